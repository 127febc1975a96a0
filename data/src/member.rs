//! One member's simulated life: profile, events, orders, tags and identifiers.
//!
//! Everything a member gets is drawn from random streams keyed by the dataset
//! seed and the member id alone, so a member's rows are the same whichever
//! thread or file produces them.

use crate::calendar::{Calendar, DAY, SECOND};
use crate::rng::{Rng, cumulative, mix};
use crate::tables::{EventRows, IdentityRows, MemberRows, NONE, OrderRows, TagRows};
use crate::vocab::{
    self, BABY_STAGES, CATEGORIES, CHANNELS, DERIVED_TAGS, INTEREST_TOPICS, PRICE_SENSITIVITY,
    SCORE_TAGS, SKIN_TYPES, STORE_CHANNEL, ev,
};

/// Most events one member may have; bounds the largest member history.
const MAX_EVENTS_PER_MEMBER: f64 = 20_000.0;
/// Spread (σ of the log) of events per member: most have a handful, a few thousands.
const ACTIVITY_SIGMA: f64 = 1.6;
/// Share of members who never pay.
const PROSPECT_SHARE: f64 = 0.2;

/// Random stream ids, one per purpose, so adding draws to one purpose leaves the others alone.
mod stream {
    pub(crate) const PROFILE: u64 = 0;
    pub(crate) const EVENTS: u64 = 1;
    pub(crate) const TAGS: u64 = 2;
    pub(crate) const IDS: u64 = 3;
    pub(crate) const PHONE: u64 = 4;
    pub(crate) const DEVICE: u64 = 5;
    pub(crate) const UNION: u64 = 6;
}

/// The shape of the whole dataset, shared read-only by every generating thread.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) seed: u64,
    pub(crate) cal: Calendar,
    /// Mean of the per-member activity draw (before the cap and the window).
    mean_events: f64,
    skus_per_category: u64,
    stores: u64,
    city_weights: Vec<f64>,
    category_weights: Vec<f64>,
    channel_weights: Vec<f64>,
}

/// One event before sorting; `seq` keeps the order of generation for equal times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    ts: i64,
    seq: u32,
    event: u8,
    channel: u8,
    category: u8,
    sku: u32,
    amount: f64,
    store: i32,
    campaign: i32,
    /// For a pay: item count and coupon id of its order.
    items: i32,
    coupon: i64,
}

/// Reusable per-thread scratch space.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    events: Vec<Event>,
    picked: Vec<u16>,
}

/// Output buffers of one file (one member range).
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) members: MemberRows,
    pub(crate) events: EventRows,
    pub(crate) orders: OrderRows,
    pub(crate) tags: TagRows,
    pub(crate) identities: IdentityRows,
}

/// What one member is like; drawn before any event.
#[derive(Debug)]
struct Profile {
    id: u64,
    register_ts: i64,
    register_channel: u8,
    home_store: Option<i32>,
    prospect: bool,
    staple: Option<u8>,
    preferred: [u8; 3],
    main_channel: u8,
    /// Activity segments `[from, to)`; a lapsed member has a gap or an early end.
    segments: [(i64, i64); 2],
    target_events: usize,
}

impl Model {
    /// A dataset of `members` members and about `events` events ending at `cal.end`.
    pub(crate) fn new(seed: u64, cal: Calendar, members: u64, events: u64) -> Self {
        let per_member = events as f64 / members.max(1) as f64;
        // Members registered during the window are active for part of it only;
        // the draw's mean is scaled so the total lands near `events`.
        let mean_events = per_member * 0.995;
        Model {
            seed,
            cal,
            mean_events,
            skus_per_category: (members / 200).clamp(20, 20_000),
            stores: (members / 500).clamp(20, 2_000),
            city_weights: cumulative(
                &(0..vocab::CITY_COUNT)
                    .map(|i| 1.0 / (i as f64 + 1.0).powf(0.9))
                    .collect::<Vec<_>>(),
            ),
            category_weights: cumulative(
                &(0..CATEGORIES.len())
                    .map(|i| 1.0 / (i as f64 + 2.0))
                    .collect::<Vec<_>>(),
            ),
            channel_weights: cumulative(&[0.25, 0.3, 0.1, 0.15, 0.1, 0.05, 0.05]),
        }
    }

    /// The hashed phone key member `id` was born with.
    fn base_phone(&self, id: u64) -> u64 {
        Rng::new(self.seed, id, stream::PHONE).next_u64()
    }

    fn draw_profile(&self, id: u64, rng: &mut Rng) -> Profile {
        let cal = &self.cal;
        let register_back =
            (rng.f64().powf(1.3) * (crate::calendar::REGISTER_DAYS * DAY) as f64) as i64;
        let register_ts =
            (cal.end - 1 - register_back).max(cal.end - crate::calendar::REGISTER_DAYS * DAY);
        let register_channel = rng.weighted(&self.channel_weights) as u8;
        let home_store = (register_channel == STORE_CHANNEL || rng.chance(0.4))
            .then(|| 1 + rng.below(self.stores) as i32);
        let prospect = rng.chance(PROSPECT_SHARE);
        let mut preferred = [0u8; 3];
        for p in &mut preferred {
            *p = rng.weighted(&self.category_weights) as u8;
        }
        let staple = [0u8, 1, 2, 4, 7, 20, 24, 31]
            .get(rng.below(12) as usize)
            .copied()
            .filter(|&c| CATEGORIES[c as usize].cadence_days > 0);
        let main_channel = if rng.chance(0.6) {
            register_channel
        } else {
            rng.weighted(&self.channel_weights) as u8
        };
        let active_from = register_ts.max(cal.start);
        let mut segments = [(active_from, cal.end), (cal.end, cal.end)];
        if rng.chance(0.3) {
            let lapse = active_from + (rng.f64() * (cal.end - active_from) as f64) as i64;
            segments[0].1 = lapse;
            if rng.chance(0.3) {
                let resume = lapse + (60 + rng.below(140) as i64) * DAY;
                segments[1] = (resume.min(cal.end), cal.end);
            }
        }
        let draw = (self.mean_events.ln() - ACTIVITY_SIGMA * ACTIVITY_SIGMA / 2.0
            + ACTIVITY_SIGMA * rng.normal())
        .exp();
        let target_events = draw.clamp(1.0, MAX_EVENTS_PER_MEMBER) as usize;
        Profile {
            id,
            register_ts,
            register_channel,
            home_store,
            prospect,
            staple,
            preferred,
            main_channel,
            segments,
            target_events,
        }
    }

    /// Simulates member `id` and appends its rows to `rows`.
    pub(crate) fn simulate(&self, id: u64, rows: &mut Rows, scratch: &mut Scratch) {
        let mut rng = Rng::new(self.seed, id, stream::PROFILE);
        let p = self.draw_profile(id, &mut rng);
        let mut life = Life {
            model: self,
            p: &p,
            rng: Rng::new(self.seed, id, stream::EVENTS),
            out: &mut scratch.events,
        };
        life.out.clear();
        life.live();
        let events = &mut scratch.events;
        events.sort_unstable_by_key(|e| (e.ts, e.seq));

        let summary = self.write_events(&p, events, rows);
        self.write_member(&p, &mut rng, &summary, rows);
        self.write_tags(&p, &summary, rows, &mut scratch.picked);
        self.write_identities(&p, rows);
    }

    fn write_events(&self, p: &Profile, events: &mut [Event], rows: &mut Rows) -> Summary {
        let mut s = Summary::default();
        let id = p.id as i64;
        let e = &mut rows.events;
        let mut channels = 0u8;
        // One member's events get distinct timestamps (ties move 1 µs later), so
        // every engine orders a member's history the same way.
        let mut previous = i64::MIN;
        for x in events.iter_mut() {
            x.ts = x.ts.max(previous + 1);
            previous = x.ts;
            e.member_id.push(id);
            e.ts.push(x.ts);
            e.event.push(x.event);
            e.channel.push(x.channel);
            e.sku_id.push((x.sku != 0).then_some(x.sku as i64));
            e.category.push(x.category);
            e.amount.push((x.amount > 0.0).then_some(x.amount));
            e.store_id.push((x.store != 0).then_some(x.store));
            e.campaign_id.push((x.campaign != 0).then_some(x.campaign));
            channels |= 1 << x.channel;
            s.last_event = x.ts;
            if x.event == ev::PAY {
                s.pays += 1;
                s.spend += x.amount;
                s.coupon_user |= x.coupon != 0;
                s.store_shopper |= x.channel == STORE_CHANNEL;
                s.festival_buyer |= self.cal.is_festival(x.ts);
                let o = &mut rows.orders;
                o.order_id.push(id * 100_000 + s.pays as i64);
                o.member_id.push(id);
                o.ts.push(x.ts);
                o.channel.push(x.channel);
                o.store_id.push((x.store != 0).then_some(x.store));
                o.amount.push(x.amount);
                let discount = if x.coupon != 0 {
                    (x.amount * 0.12 * 100.0).round() / 100.0
                } else {
                    0.0
                };
                o.discount.push(discount);
                o.item_count.push(x.items);
                o.coupon_id.push((x.coupon != 0).then_some(x.coupon));
            }
        }
        s.events = events.len();
        s.channels = channels.count_ones();
        s
    }

    fn write_member(&self, p: &Profile, rng: &mut Rng, s: &Summary, rows: &mut Rows) {
        let m = &mut rows.members;
        m.member_id.push(p.id as i64);
        m.register_ts.push(p.register_ts);
        m.register_channel.push(p.register_channel);
        m.city.push(rng.weighted(&self.city_weights) as u16);
        m.gender.push(rng.weighted(&[0.7, 0.9, 1.0]) as u8);
        m.birth_year.push(
            (!rng.chance(0.15)).then(|| (1992.0 + 6.0 * rng.normal()).clamp(1960.0, 2007.0) as i32),
        );
        let tier = match s.spend {
            x if x >= 12_000.0 && rng.chance(0.5) => 3,
            x if x >= 4_000.0 => 2,
            x if x >= 800.0 && rng.chance(0.6) => 1,
            _ if rng.chance(0.05) => 1,
            _ => 0,
        };
        m.tier.push(tier);
        m.points.push(s.spend as i64 + rng.below(2_000) as i64);
        m.home_store_id.push(p.home_store);
        m.phone_hash.push(self.phone(p.id));
    }

    /// Member `id`'s hashed phone: none for ~10%, shared with a nearby
    /// earlier member for ~2% (duplicate accounts).
    fn phone(&self, id: u64) -> Option<u64> {
        let mut rng = Rng::new(self.seed, id, stream::PHONE ^ 0xff);
        if rng.chance(0.1) {
            return None;
        }
        if id > 1 && rng.chance(0.02) {
            return Some(self.base_phone(id - rng.range(1, (id - 1).min(50))));
        }
        Some(self.base_phone(id))
    }

    fn write_tags(&self, p: &Profile, s: &Summary, rows: &mut Rows, picked: &mut Vec<u16>) {
        let mut rng = Rng::new(self.seed, p.id, stream::TAGS);
        let t = &mut rows.tags;
        let id = p.id as i64;
        let mut push = |tag: &'static str, code: u16, value: &'static str| {
            t.member_id.push(id);
            t.tag.push(tag);
            t.tag_code.push(code);
            t.value.push(value);
        };
        if rng.chance(0.6) {
            push("baby_stage", 0, BABY_STAGES[rng.below(5) as usize]);
        }
        push(
            "price_sensitivity",
            0,
            PRICE_SENSITIVITY[rng.below(3) as usize],
        );
        push(
            "preferred_category",
            0,
            CATEGORIES[p.preferred[0] as usize].name,
        );
        if p.preferred[1] != p.preferred[0] {
            push(
                "preferred_category",
                0,
                CATEGORIES[p.preferred[1] as usize].name,
            );
        }
        push("preferred_channel", 0, CHANNELS[p.main_channel as usize]);
        if rng.chance(0.5) {
            push("skin_type", 0, SKIN_TYPES[rng.below(5) as usize]);
        }
        picked.clear();
        for _ in 0..rng.range(4, 16) {
            let topic = rng.zipf(INTEREST_TOPICS as u64) as u16;
            if !picked.contains(&topic) {
                picked.push(topic);
                push("", topic, "1");
            }
        }
        picked.clear();
        for _ in 0..rng.range(2, 6) {
            let score = rng.zipf(SCORE_TAGS as u64) as u16;
            if !picked.contains(&score) {
                picked.push(score);
                push(
                    "",
                    INTEREST_TOPICS as u16 + score,
                    DECILES[rng.below(10) as usize],
                );
            }
        }
        let cal = &self.cal;
        let derived = [
            s.events > 0 && s.last_event < cal.end - 180 * DAY,
            s.spend >= 4_000.0,
            s.coupon_user,
            s.store_shopper,
            p.register_ts >= cal.end - 30 * DAY,
            s.festival_buyer,
            rng.chance(0.1),
            s.channels >= 3,
        ];
        for (name, holds) in DERIVED_TAGS.iter().zip(derived) {
            if holds {
                push(name, 0, "1");
            }
        }
    }

    fn write_identities(&self, p: &Profile, rows: &mut Rows) {
        let mut rng = Rng::new(self.seed, p.id, stream::IDS);
        let r = &mut rows.identities;
        let mut push = |member: Option<i64>, ty: &str, key: u64| {
            r.member_id.push(member);
            r.id_type
                .push(vocab::ID_TYPES.iter().position(|t| *t == ty).unwrap_or(0) as u8);
            r.id_key.push(key);
        };
        let me = Some(p.id as i64);
        let key = |stream: u64| mix(self.seed ^ mix(p.id ^ (stream << 40)));
        let phone = self.phone(p.id);
        if let Some(phone) = phone {
            push(me, "phone", phone);
        }
        if rng.chance(0.6) {
            push(me, "openid", key(10));
        }
        if rng.chance(0.5) {
            // a duplicate account (shared phone) often logs in with the same WeChat
            let shares_phone = phone.is_some_and(|ph| ph != self.base_phone(p.id));
            let union_owner = if shares_phone && rng.chance(0.5) {
                p.id.wrapping_sub(1)
            } else {
                p.id
            };
            push(
                me,
                "unionid",
                Rng::new(self.seed, union_owner, stream::UNION).next_u64(),
            );
        }
        if rng.chance(0.7) {
            push(me, "card_no", key(11));
        }
        if rng.chance(0.8) {
            // family members share a device with the previous member now and then
            let owner = if p.id > 1 && rng.chance(0.02) {
                p.id - 1
            } else {
                p.id
            };
            let device = Rng::new(self.seed, owner, stream::DEVICE).next_u64();
            push(me, "device_id", device);
            if rng.chance(0.1) {
                push(None, "device_id", device); // seen before login
            }
        }
        if rng.chance(0.3) {
            push(me, "tmall_nick", key(12));
        }
        if rng.chance(0.2) {
            push(me, "jd_pin", key(13));
        }
        if rng.chance(0.05) {
            push(None, "openid", key(14)); // an anonymous visitor
        }
    }
}

/// Decile values of the score tags.
const DECILES: [&str; 10] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];

/// What a member's events add up to, for the profile and the derived tags.
#[derive(Debug, Default)]
struct Summary {
    events: usize,
    pays: u32,
    spend: f64,
    last_event: i64,
    coupon_user: bool,
    store_shopper: bool,
    festival_buyer: bool,
    channels: u32,
}

/// The event simulation of one member.
struct Life<'a> {
    model: &'a Model,
    p: &'a Profile,
    rng: Rng,
    out: &'a mut Vec<Event>,
}

/// The context events of one session share.
#[derive(Clone, Copy)]
struct Session {
    channel: u8,
    store: i32,
    campaign: i32,
}

impl Life<'_> {
    fn live(&mut self) {
        let p = self.p;
        let n = p.target_events;
        if let Some(staple) = p.staple.filter(|_| !p.prospect) {
            self.replenish(staple, n * 35 / 100);
        }
        let mut misses = 0;
        while self.out.len() < n && misses < 8 {
            match self.session_start() {
                Some(t) => self.session(t),
                None => misses += 1,
            }
        }
    }

    /// Repeat purchases of a staple category at its cadence, using up to `budget` events.
    fn replenish(&mut self, staple: u8, budget: usize) {
        let cadence = CATEGORIES[staple as usize].cadence_days as i64 * DAY;
        let [(from, to), (resume, end)] = self.p.segments;
        let mut t = from + self.rng.below(cadence as u64) as i64;
        while self.out.len() < budget {
            if t >= to && t < resume {
                t = resume + self.rng.below(cadence as u64) as i64;
            }
            if t >= end {
                break;
            }
            let s = self.session_context(t);
            self.journey(t, s, staple, true);
            t += (cadence as f64 * (0.7 + 0.6 * self.rng.f64())) as i64;
        }
    }

    /// A session start time inside the member's activity segments.
    fn session_start(&mut self) -> Option<i64> {
        let [(a0, a1), (b0, b1)] = self.p.segments;
        let (len0, len1) = ((a1 - a0).max(0), (b1 - b0).max(0));
        if len0 + len1 == 0 {
            return None;
        }
        let (from, to) = if self.rng.below((len0 + len1) as u64) < len0 as u64 {
            (a0, a1)
        } else {
            (b0, b1)
        };
        self.model.cal.sample(&mut self.rng, from, to)
    }

    fn session_context(&mut self, t: i64) -> Session {
        let channel = if self.rng.chance(0.7) {
            self.p.main_channel
        } else {
            self.rng.weighted(&self.model.channel_weights) as u8
        };
        let store = if channel == STORE_CHANNEL {
            self.p
                .home_store
                .unwrap_or_else(|| 1 + self.rng.below(self.model.stores) as i32)
        } else {
            0
        };
        let campaign_share = if self.model.cal.is_festival(t) {
            0.5
        } else {
            0.15
        };
        let campaign = if self.rng.chance(campaign_share) {
            self.model.cal.campaign(&mut self.rng, t)
        } else {
            0
        };
        Session {
            channel,
            store,
            campaign,
        }
    }

    fn session(&mut self, mut t: i64) {
        let s = self.session_context(t);
        let cat = self.pick_category();
        if s.channel == STORE_CHANNEL {
            t = self.push(t, s, ev::STORE_VISIT, NONE, 0, 0.0);
        }
        if self.rng.chance(0.3) {
            t = self.push(t, s, ev::SEARCH, cat, 0, 0.0);
        }
        if self.rng.chance(0.06) {
            t = self.push(t, s, ev::COUPON_CLAIM, NONE, 0, 0.0);
        }
        let journeys = 1 + self.rng.chance(0.5) as u32 + self.rng.chance(0.2) as u32;
        let mut cat = cat;
        for j in 0..journeys {
            if j > 0 {
                cat = self.pick_category();
            }
            t = self.journey(t, s, cat, false);
            if t >= self.model.cal.end {
                return;
            }
        }
        if self.rng.chance(0.05) {
            let sku = self.sku(cat);
            t = self.push(t, s, ev::SHARE, cat, sku, 0.0);
        }
        if self.rng.chance(0.02) {
            t = self.push(t, s, ev::GROUP_JOIN, NONE, 0, 0.0);
        }
        if self.rng.chance(0.01) {
            self.push(t, s, ev::WECOM_ADD, NONE, 0, 0.0);
        }
    }

    fn pick_category(&mut self) -> u8 {
        if self.rng.chance(0.7) {
            self.p.preferred[self.rng.below(3) as usize]
        } else {
            self.rng.weighted(&self.model.category_weights) as u8
        }
    }

    fn sku(&mut self, cat: u8) -> u32 {
        1 + cat as u32
            + CATEGORIES.len() as u32 * self.rng.zipf(self.model.skus_per_category) as u32
    }

    /// view → cart → order → pay, each step with its drop-off; returns the time after it.
    fn journey(&mut self, t: i64, s: Session, cat: u8, replenish: bool) -> i64 {
        let end = self.model.cal.end;
        let sku = self.sku(cat);
        let (p_cart, p_order, p_pay) = match (replenish, self.p.prospect) {
            (true, _) => (0.8, 0.8, 0.95),
            (false, true) => (0.2, 0.0, 0.0),
            (false, false) => (0.27, 0.42, 0.84),
        };
        let mut t = self.push(t, s, ev::VIEW, cat, sku, 0.0);
        if t >= end || !self.rng.chance(p_cart) {
            return t;
        }
        t = self.push(t, s, ev::CART, cat, sku, 0.0);
        if t >= end || !self.rng.chance(p_order) {
            return t;
        }
        let wait = if self.rng.chance(0.75) {
            self.rng.exp(600.0)
        } else {
            self.rng.exp(1.5 * 86_400.0)
        };
        t += wait as i64 * SECOND;
        if t >= end {
            return t;
        }
        let items = 1 + self.rng.zipf(5) as i32;
        let price = CATEGORIES[cat as usize].price * (0.7 + 0.6 * self.rng.f64());
        let amount = ((price * items as f64) * 100.0).round() / 100.0;
        t = self.push(t, s, ev::ORDER, cat, sku, amount);
        if !self.rng.chance(p_pay) {
            return t;
        }
        t += self.rng.exp(180.0) as i64 * SECOND;
        if t >= end {
            return t;
        }
        let coupon = if self.rng.chance(0.2) {
            1_000 * (1 + self.rng.below(200) as i64) + self.rng.below(50) as i64
        } else {
            0
        };
        let pay_at = t;
        t = self.push(t, s, ev::PAY, cat, sku, amount);
        if let Some(last) = self.out.last_mut() {
            last.items = items;
            last.coupon = coupon;
        }
        if coupon != 0 {
            self.out.push(Event {
                event: ev::COUPON_USE,
                category: NONE,
                sku: 0,
                amount: 0.0,
                seq: self.out.len() as u32,
                ..self.out[self.out.len() - 1]
            });
        }
        if self.rng.chance(0.04) {
            let at = pay_at + (self.rng.exp(5.0 * 86_400.0) as i64 + 3_600) * SECOND;
            if at < end {
                let refund = (amount * (0.3 + 0.7 * self.rng.f64()) * 100.0).round() / 100.0;
                self.push(at, s, ev::REFUND, cat, sku, refund.max(0.01));
            }
        }
        t
    }

    /// Records an event at `t` (if inside the window) and returns a time a little later.
    fn push(&mut self, t: i64, s: Session, event: u8, category: u8, sku: u32, amount: f64) -> i64 {
        if t < self.model.cal.end {
            self.out.push(Event {
                ts: t,
                seq: self.out.len() as u32,
                event,
                channel: s.channel,
                category,
                sku,
                amount,
                store: s.store,
                campaign: s.campaign,
                items: 0,
                coupon: 0,
            });
        }
        t + (1 + self.rng.exp(40.0) as i64) * SECOND
    }
}
