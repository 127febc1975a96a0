//! Answers to the metadata calls BI drivers make on connect: SqlInfo, XDBC
//! type info, key listings (always empty: Parquet tables declare no keys),
//! and the table-type filter normalization Grafana needs.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction, SqlSupportsConvert, XdbcDataType, XdbcDatetimeSubcode,
};

/// The server's SqlInfo, as seen by a read-only user or by one who may write.
pub(crate) fn sql_info(read_only: bool) -> &'static SqlInfoData {
    static READ_ONLY: OnceLock<SqlInfoData> = OnceLock::new();
    static WRITABLE: OnceLock<SqlInfoData> = OnceLock::new();
    let cell = if read_only { &READ_ONLY } else { &WRITABLE };
    cell.get_or_init(|| build_sql_info(read_only))
}

fn build_sql_info(read_only: bool) -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Audience");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "59.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, read_only);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, !read_only);
    // unquoted identifiers fold to lower case; quoted ones keep their case
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // ASC puts NULLs last, DESC first: NULL sorts as the highest value
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlKeywords, KEYWORDS);
    b.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    b.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    b.append(SqlInfo::SqlSystemFunctions, &[] as &[&str]);
    b.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(
        SqlInfo::SqlSupportsConvert,
        std::collections::BTreeMap::<i32, Vec<i32>>::from([(
            SqlSupportsConvert::SqlConvertInteger as i32,
            vec![
                SqlSupportsConvert::SqlConvertBigint as i32,
                SqlSupportsConvert::SqlConvertVarchar as i32,
                SqlSupportsConvert::SqlConvertFloat as i32,
            ],
        )]),
    );
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // minimum and core grammar; ANSI-92 entry level
    b.append(SqlInfo::SqlSupportedGrammar, 0b11i32);
    b.append(SqlInfo::SqlAnsi92SupportedLevel, 0b1i32);
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    b.append(SqlInfo::SqlOuterJoinsSupportLevel, 2i32);
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    // subqueries in comparisons, EXISTS, IN and quantified comparisons
    b.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        // 0: no fixed limit
        b.append(limit, 0i64);
    }
    b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    b.append(SqlInfo::SqlDefaultTransactionIsolation, 0i64);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
    // forward-only result sets
    b.append(SqlInfo::SqlSupportedResultSetTypes, 0b10i32);
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build().expect("static SqlInfo values are well-typed") // ok: a unit test builds both variants
}

const KEYWORDS: &[&str] = &[
    "COPY", "EXPLAIN", "ILIKE", "INTERVAL", "LIMIT", "OFFSET", "QUALIFY", "SHOW", "STORED",
    "UNNEST",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "floor", "round", "trunc", "power", "sqrt", "exp", "ln", "log", "log10",
    "random", "mod", "sign",
];
const STRING_FUNCTIONS: &[&str] = &[
    "concat",
    "length",
    "lower",
    "upper",
    "trim",
    "ltrim",
    "rtrim",
    "substr",
    "replace",
    "lpad",
    "rpad",
    "strpos",
    "split_part",
    "starts_with",
    "regexp_like",
    "regexp_replace",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "now",
    "current_date",
    "date_trunc",
    "date_part",
    "extract",
    "date_bin",
    "to_timestamp",
    "to_date",
    "make_date",
    "to_char",
];

/// Name, type, column size, SQL type and datetime subcode of one XDBC type.
type TypeRow = (
    &'static str,
    XdbcDataType,
    Option<i32>,
    XdbcDataType,
    Option<XdbcDatetimeSubcode>,
);

/// The SQL types clients may see, for `CommandGetXdbcTypeInfo`.
pub(crate) fn xdbc_type_info() -> &'static XdbcTypeInfoData {
    static DATA: OnceLock<XdbcTypeInfoData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = XdbcTypeInfoDataBuilder::new();
        let types: [TypeRow; 12] = [
            (
                "BOOLEAN",
                XdbcDataType::XdbcBit,
                Some(1),
                XdbcDataType::XdbcBit,
                None,
            ),
            (
                "TINYINT",
                XdbcDataType::XdbcTinyint,
                Some(3),
                XdbcDataType::XdbcTinyint,
                None,
            ),
            (
                "SMALLINT",
                XdbcDataType::XdbcSmallint,
                Some(5),
                XdbcDataType::XdbcSmallint,
                None,
            ),
            (
                "INTEGER",
                XdbcDataType::XdbcInteger,
                Some(10),
                XdbcDataType::XdbcInteger,
                None,
            ),
            (
                "BIGINT",
                XdbcDataType::XdbcBigint,
                Some(19),
                XdbcDataType::XdbcBigint,
                None,
            ),
            (
                "REAL",
                XdbcDataType::XdbcFloat,
                Some(24),
                XdbcDataType::XdbcFloat,
                None,
            ),
            (
                "DOUBLE",
                XdbcDataType::XdbcDouble,
                Some(53),
                XdbcDataType::XdbcDouble,
                None,
            ),
            (
                "DECIMAL",
                XdbcDataType::XdbcDecimal,
                Some(38),
                XdbcDataType::XdbcDecimal,
                None,
            ),
            (
                "VARCHAR",
                XdbcDataType::XdbcVarchar,
                None,
                XdbcDataType::XdbcVarchar,
                None,
            ),
            (
                "BYTEA",
                XdbcDataType::XdbcVarbinary,
                None,
                XdbcDataType::XdbcVarbinary,
                None,
            ),
            (
                "DATE",
                XdbcDataType::XdbcDate,
                Some(10),
                XdbcDataType::XdbcDatetime,
                Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
            ),
            (
                "TIMESTAMP",
                XdbcDataType::XdbcTimestamp,
                Some(29),
                XdbcDataType::XdbcDatetime,
                Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
            ),
        ];
        for (name, data_type, column_size, sql_data_type, datetime_subcode) in types {
            let quoted = matches!(name, "VARCHAR" | "DATE" | "TIMESTAMP");
            let numeric = column_size.is_some() && !quoted && name != "BOOLEAN";
            b.append(XdbcTypeInfo {
                type_name: name.into(),
                data_type,
                column_size,
                literal_prefix: quoted.then(|| "'".into()),
                literal_suffix: quoted.then(|| "'".into()),
                create_params: None,
                nullable: Nullable::NullabilityNullable,
                case_sensitive: name == "VARCHAR",
                searchable: Searchable::Full,
                unsigned_attribute: numeric.then_some(false),
                fixed_prec_scale: name == "DECIMAL",
                auto_increment: numeric.then_some(false),
                local_type_name: Some(name.into()),
                minimum_scale: None,
                maximum_scale: (name == "DECIMAL").then_some(38),
                sql_data_type,
                datetime_subcode,
                num_prec_radix: numeric.then_some(10),
                interval_precision: None,
            });
        }
        b.build().expect("static type info is well-typed") // ok: a unit test builds it
    })
}

/// Table types as listed, from the types a client filters on: `BASE TABLE`
/// (Grafana, information_schema wording) means `TABLE`.
pub(crate) fn table_types_filter(requested: Vec<String>) -> Vec<String> {
    let mut types: Vec<String> = requested
        .into_iter()
        .map(|t| {
            if t.eq_ignore_ascii_case("BASE TABLE") {
                "TABLE".to_string()
            } else {
                t.to_ascii_uppercase()
            }
        })
        .collect();
    types.sort();
    types.dedup();
    types
}

/// The table types this server lists.
pub(crate) const TABLE_TYPES: &[&str] = &["TABLE", "VIEW"];

/// The schema of `CommandGetPrimaryKeys` results.
pub(crate) fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The schema of `CommandGetExportedKeys`, `CommandGetImportedKeys` and
/// `CommandGetCrossReference` results.
pub(crate) fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_answers_build() -> Result<(), arrow_flight::error::FlightError> {
        for read_only in [true, false] {
            let batch = sql_info(read_only).record_batch(None)?;
            assert!(batch.num_rows() > 80, "{}", batch.num_rows());
        }
        let one = sql_info(true).record_batch(vec![SqlInfo::FlightSqlServerName as u32])?;
        assert_eq!(one.num_rows(), 1);
        assert_eq!(xdbc_type_info().record_batch(None)?.num_rows(), 12);
        assert_eq!(
            xdbc_type_info()
                .record_batch(Some(XdbcDataType::XdbcBigint as i32))?
                .num_rows(),
            1
        );
        Ok(())
    }

    #[test]
    fn base_table_means_table() {
        assert_eq!(
            table_types_filter(vec!["BASE TABLE".into(), "table".into(), "VIEW".into()]),
            vec!["TABLE".to_string(), "VIEW".to_string()]
        );
    }
}
