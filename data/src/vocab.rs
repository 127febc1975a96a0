//! The fixed vocabularies of the dataset: channels, event types, categories,
//! cities and tag names. Changing any list changes the generated rows.

/// Sales and engagement channels, in the order their codes use.
pub(crate) const CHANNELS: [&str; 7] = [
    "app",
    "miniprogram",
    "wecom",
    "store",
    "tmall",
    "jd",
    "douyin",
];
/// Code of the `store` channel in [`CHANNELS`].
pub(crate) const STORE_CHANNEL: u8 = 3;

/// Behavioral event types, in the order their codes use.
pub(crate) const EVENTS: [&str; 12] = [
    "view",
    "search",
    "cart",
    "order",
    "pay",
    "refund",
    "share",
    "coupon_claim",
    "coupon_use",
    "store_visit",
    "wecom_add",
    "group_join",
];

/// Event type codes into [`EVENTS`].
pub(crate) mod ev {
    pub(crate) const VIEW: u8 = 0;
    pub(crate) const SEARCH: u8 = 1;
    pub(crate) const CART: u8 = 2;
    pub(crate) const ORDER: u8 = 3;
    pub(crate) const PAY: u8 = 4;
    pub(crate) const REFUND: u8 = 5;
    pub(crate) const SHARE: u8 = 6;
    pub(crate) const COUPON_CLAIM: u8 = 7;
    pub(crate) const COUPON_USE: u8 = 8;
    pub(crate) const STORE_VISIT: u8 = 9;
    pub(crate) const WECOM_ADD: u8 = 10;
    pub(crate) const GROUP_JOIN: u8 = 11;
}

/// A product category: its name, a typical unit price (yuan) and, for staples,
/// the repurchase cadence in days (0 = no cadence).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Category {
    pub(crate) name: &'static str,
    pub(crate) price: f64,
    pub(crate) cadence_days: u32,
}

const fn cat(name: &'static str, price: f64, cadence_days: u32) -> Category {
    Category {
        name,
        price,
        cadence_days,
    }
}

/// The 50 product categories, most popular first (popularity is Zipf over this order).
pub(crate) const CATEGORIES: [Category; 50] = [
    cat("formula", 298.0, 21),
    cat("diapers", 139.0, 14),
    cat("wipes", 39.0, 21),
    cat("skincare", 259.0, 60),
    cat("baby_food", 59.0, 30),
    cat("makeup", 189.0, 0),
    cat("snacks", 29.0, 0),
    cat("dairy", 69.0, 10),
    cat("baby_clothing", 129.0, 0),
    cat("toys", 99.0, 0),
    cat("haircare", 79.0, 45),
    cat("bodycare", 69.0, 45),
    cat("cleanser", 89.0, 45),
    cat("serum", 399.0, 60),
    cat("masks", 129.0, 30),
    cat("suncare", 149.0, 0),
    cat("vitamins", 199.0, 30),
    cat("bottles", 89.0, 0),
    cat("maternity", 219.0, 0),
    cat("beverages", 39.0, 0),
    cat("coffee", 89.0, 20),
    cat("tea", 119.0, 0),
    cat("household", 49.0, 0),
    cat("laundry", 59.0, 45),
    cat("paper", 45.0, 30),
    cat("oral_care", 35.0, 45),
    cat("lipstick", 299.0, 0),
    cat("fragrance", 499.0, 0),
    cat("strollers", 1299.0, 0),
    cat("car_seats", 1599.0, 0),
    cat("health", 159.0, 0),
    cat("pet_food", 129.0, 30),
    cat("kitchen", 159.0, 0),
    cat("bath", 79.0, 0),
    cat("bedding", 259.0, 0),
    cat("books", 49.0, 0),
    cat("kids_shoes", 179.0, 0),
    cat("womens_wear", 259.0, 0),
    cat("mens_wear", 239.0, 0),
    cat("bags", 399.0, 0),
    cat("school", 39.0, 0),
    cat("sports", 199.0, 0),
    cat("outdoor", 299.0, 0),
    cat("electronics", 899.0, 0),
    cat("phone_accessories", 69.0, 0),
    cat("jewelry", 999.0, 0),
    cat("watches", 1299.0, 0),
    cat("gifts", 159.0, 0),
    cat("frozen", 59.0, 0),
    cat("shoes", 299.0, 0),
];

/// Cities with real names, largest first, with their provinces. The rest of the
/// ~300 cities are named `<province>-<n>` by [`city`].
const NAMED_CITIES: [(&str, &str); 60] = [
    ("Shanghai", "Shanghai"),
    ("Beijing", "Beijing"),
    ("Guangzhou", "Guangdong"),
    ("Shenzhen", "Guangdong"),
    ("Chengdu", "Sichuan"),
    ("Hangzhou", "Zhejiang"),
    ("Chongqing", "Chongqing"),
    ("Wuhan", "Hubei"),
    ("Xi'an", "Shaanxi"),
    ("Suzhou", "Jiangsu"),
    ("Tianjin", "Tianjin"),
    ("Nanjing", "Jiangsu"),
    ("Changsha", "Hunan"),
    ("Zhengzhou", "Henan"),
    ("Dongguan", "Guangdong"),
    ("Qingdao", "Shandong"),
    ("Shenyang", "Liaoning"),
    ("Ningbo", "Zhejiang"),
    ("Kunming", "Yunnan"),
    ("Hefei", "Anhui"),
    ("Foshan", "Guangdong"),
    ("Wuxi", "Jiangsu"),
    ("Xiamen", "Fujian"),
    ("Jinan", "Shandong"),
    ("Fuzhou", "Fujian"),
    ("Wenzhou", "Zhejiang"),
    ("Dalian", "Liaoning"),
    ("Harbin", "Heilongjiang"),
    ("Changchun", "Jilin"),
    ("Quanzhou", "Fujian"),
    ("Shijiazhuang", "Hebei"),
    ("Nanning", "Guangxi"),
    ("Guiyang", "Guizhou"),
    ("Nanchang", "Jiangxi"),
    ("Taiyuan", "Shanxi"),
    ("Jinhua", "Zhejiang"),
    ("Changzhou", "Jiangsu"),
    ("Huizhou", "Guangdong"),
    ("Jiaxing", "Zhejiang"),
    ("Nantong", "Jiangsu"),
    ("Xuzhou", "Jiangsu"),
    ("Zhuhai", "Guangdong"),
    ("Yantai", "Shandong"),
    ("Shaoxing", "Zhejiang"),
    ("Lanzhou", "Gansu"),
    ("Haikou", "Hainan"),
    ("Urumqi", "Xinjiang"),
    ("Hohhot", "Inner Mongolia"),
    ("Yinchuan", "Ningxia"),
    ("Xining", "Qinghai"),
    ("Lhasa", "Tibet"),
    ("Tangshan", "Hebei"),
    ("Linyi", "Shandong"),
    ("Weifang", "Shandong"),
    ("Luoyang", "Henan"),
    ("Yangzhou", "Jiangsu"),
    ("Zhongshan", "Guangdong"),
    ("Shantou", "Guangdong"),
    ("Baoding", "Hebei"),
    ("Mianyang", "Sichuan"),
];

/// Provinces that host the generated (unnamed) cities.
const PROVINCES: [&str; 24] = [
    "Guangdong",
    "Jiangsu",
    "Zhejiang",
    "Shandong",
    "Henan",
    "Sichuan",
    "Hubei",
    "Hunan",
    "Hebei",
    "Fujian",
    "Anhui",
    "Liaoning",
    "Shaanxi",
    "Jiangxi",
    "Guangxi",
    "Yunnan",
    "Guizhou",
    "Shanxi",
    "Heilongjiang",
    "Jilin",
    "Gansu",
    "Inner Mongolia",
    "Xinjiang",
    "Hainan",
];

/// Number of distinct cities.
pub(crate) const CITY_COUNT: usize = 300;

/// All cities as `(city, province)`, most populous first.
pub(crate) fn cities() -> Vec<(String, &'static str)> {
    (0..CITY_COUNT)
        .map(|i| match NAMED_CITIES.get(i) {
            Some(&(city, province)) => (city.to_string(), province),
            None => {
                let k = i - NAMED_CITIES.len();
                let province = PROVINCES[k % PROVINCES.len()];
                (
                    format!("{province}-{:02}", k / PROVINCES.len() + 1),
                    province,
                )
            }
        })
        .collect()
}

/// Member tiers in code order.
pub(crate) const TIERS: [&str; 4] = ["normal", "silver", "gold", "black"];
/// Genders in code order.
pub(crate) const GENDERS: [&str; 3] = ["f", "m", "u"];

/// `baby_stage` tag values.
pub(crate) const BABY_STAGES: [&str; 5] = ["pregnant", "0-6m", "6-12m", "1-3y", "3-6y"];
/// `price_sensitivity` tag values.
pub(crate) const PRICE_SENSITIVITY: [&str; 3] = ["low", "medium", "high"];
/// `skin_type` tag values.
pub(crate) const SKIN_TYPES: [&str; 5] = ["dry", "oily", "combination", "normal", "sensitive"];
/// Topics of the `interest_*` tag family (value `"1"`), 300 of them.
pub(crate) const INTEREST_TOPICS: usize = 300;
/// Derived tags computed from a member's history, value `"1"` when they hold.
pub(crate) const DERIVED_TAGS: [&str; 8] = [
    "churned",
    "high_value",
    "coupon_user",
    "store_shopper",
    "new_member",
    "festival_buyer",
    "night_owl",
    "multi_channel",
];
/// Model-score tags (`score_<n>`, value a decile `"1"`..`"10"`), 80 of them.
pub(crate) const SCORE_TAGS: usize = 80;

/// Identifier types of the identities table, in code order.
pub(crate) const ID_TYPES: [&str; 7] = [
    "phone",
    "openid",
    "unionid",
    "card_no",
    "device_id",
    "tmall_nick",
    "jd_pin",
];
