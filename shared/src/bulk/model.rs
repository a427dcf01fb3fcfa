//! CSV import rows and bulk update requests: parsing and rules, no I/O.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::model::{
    InventoryPolicy, MAX_OPTIONS, ProductStatus, Variant, adjust_price, check_price, check_sku, check_tags,
};
use crate::error::FieldError;
use crate::jobs::records::RowError;

/// The columns an import file may have (any order; `handle` is required).
pub const COLUMNS: &[&str] = &[
    "handle",
    "title",
    "description",
    "status",
    "tags",
    "option1_name",
    "option1_value",
    "option2_name",
    "option2_value",
    "option3_name",
    "option3_value",
    "sku",
    "barcode",
    "price_minor",
    "compare_at_price_minor",
    "weight_grams",
    "stock_quantity",
    "inventory_policy",
];
/// Rows per import file (the file itself is at most the API's 64 KiB body).
pub const MAX_ROWS: usize = 5_000;

/// One data row: a variant of the product named by `handle`; the first row of a handle
/// with a title also gives the product's fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportRow {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    pub handle: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<ProductStatus>,
    pub tags: Option<Vec<String>>,
    /// (option name, value), in option order.
    pub options: Vec<(String, String)>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub price_minor: Option<i64>,
    pub compare_at_price_minor: Option<i64>,
    pub weight_grams: Option<u32>,
    pub stock_quantity: Option<i64>,
    pub inventory_policy: Option<InventoryPolicy>,
}

fn row_error(line: u64, column: Option<&str>, message: impl Into<String>) -> RowError {
    RowError { line: Some(line), pointer: column.map(|c| format!("/{c}")), message: message.into() }
}

/// Parses an import file. A file that is not a usable table (no header, unknown or missing
/// columns, too many rows) is refused whole (`Err`, a 422 before any job); a row that does
/// not parse is reported with its line and left out.
pub fn parse_csv(text: &str) -> Result<(Vec<ImportRow>, Vec<RowError>), Vec<FieldError>> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![FieldError::new("", format!("the file has no readable header row: {e}"))]),
    };
    let mut errors = Vec::new();
    for column in &header {
        if !COLUMNS.contains(&column.as_str()) {
            errors
                .push(FieldError::new("", format!("unknown column {column}; the columns are {}", COLUMNS.join(", "))));
        }
    }
    if !header.iter().any(|c| c == "handle") {
        errors.push(FieldError::new("", "the header needs a handle column"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let index: HashMap<&str, usize> = header.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let mut rows = Vec::new();
    let mut row_errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                row_errors.push(row_error(line, None, format!("unreadable row: {e}")));
                continue;
            }
        };
        if rows.len() + row_errors.len() >= MAX_ROWS {
            return Err(vec![FieldError::new("", format!("an import has at most {MAX_ROWS} rows"))]);
        }
        let line = record.position().map_or(0, |p| p.line());
        let cell =
            |name: &str| index.get(name).and_then(|i| record.get(*i)).filter(|v| !v.is_empty()).map(str::to_owned);
        if record.iter().all(str::is_empty) {
            continue;
        }
        match parse_row(line, &cell) {
            Ok(row) => rows.push(row),
            Err(mut errors) => row_errors.append(&mut errors),
        }
    }
    Ok((rows, row_errors))
}

fn parse_row(line: u64, cell: &dyn Fn(&str) -> Option<String>) -> Result<ImportRow, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut number = |column: &str| -> Option<i64> {
        let raw = cell(column)?;
        match raw.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(row_error(line, Some(column), format!("{raw} is not a whole number (minor units, grams)")));
                None
            }
        }
    };
    let price_minor = number("price_minor");
    let compare_at_price_minor = number("compare_at_price_minor");
    let weight = number("weight_grams");
    let stock_quantity = number("stock_quantity");
    let mut row = ImportRow {
        line,
        handle: cell("handle").unwrap_or_default(),
        title: cell("title"),
        description: cell("description"),
        sku: cell("sku"),
        barcode: cell("barcode"),
        price_minor,
        compare_at_price_minor,
        stock_quantity,
        tags: cell("tags").map(|t| t.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()),
        ..Default::default()
    };
    let mut field_errors = Vec::new();
    let mut push = |column: &str, message: String| errors.push(row_error(line, Some(column), message));
    if row.handle.is_empty() {
        push("handle", "every row needs the handle of its product".into());
    } else {
        crate::catalog::model::check_handle(&row.handle, "/handle", &mut field_errors);
    }
    match cell("status").as_deref() {
        None => {}
        Some("draft") => row.status = Some(ProductStatus::Draft),
        Some("active") => row.status = Some(ProductStatus::Active),
        Some("archived") => row.status = Some(ProductStatus::Archived),
        Some(other) => push("status", format!("{other} is not one of draft, active, archived")),
    }
    match cell("inventory_policy").as_deref() {
        None => {}
        Some("deny") => row.inventory_policy = Some(InventoryPolicy::Deny),
        Some("continue") => row.inventory_policy = Some(InventoryPolicy::Continue),
        Some(other) => push("inventory_policy", format!("{other} is not one of deny, continue")),
    }
    match weight.map(u32::try_from) {
        None => {}
        Some(Ok(w)) => row.weight_grams = Some(w),
        Some(Err(_)) => push("weight_grams", "must be 0 or more grams".into()),
    }
    for n in 1..=MAX_OPTIONS {
        let (name_col, value_col) = (format!("option{n}_name"), format!("option{n}_value"));
        match (cell(&name_col), cell(&value_col)) {
            (Some(name), Some(value)) => row.options.push((name, value)),
            (None, None) => {}
            (Some(_), None) => push(&value_col, format!("{name_col} is set: give the value too")),
            (None, Some(_)) => push(&name_col, format!("{value_col} is set: give the option's name too")),
        }
    }
    if let Some(sku) = &row.sku {
        check_sku(sku, "/sku", &mut field_errors);
    }
    if let Some(p) = row.price_minor {
        check_price(p, "/price_minor", &mut field_errors);
    }
    if let Some(p) = row.compare_at_price_minor {
        check_price(p, "/compare_at_price_minor", &mut field_errors);
    }
    if let Some(tags) = &row.tags {
        check_tags(tags, "/tags", &mut field_errors);
    }
    if let Some(title) = &row.title
        && title.chars().count() > crate::catalog::model::MAX_TEXT
    {
        push("title", "must be at most 255 characters".into());
    }
    errors.extend(field_errors.into_iter().map(|e| RowError {
        line: Some(line),
        pointer: Some(e.pointer),
        message: e.message,
    }));
    if errors.is_empty() { Ok(row) } else { Err(errors) }
}

/// Rows of one product, in file order.
pub struct ProductGroup {
    pub handle: String,
    pub rows: Vec<ImportRow>,
}

/// Groups rows by handle in order of first appearance, and refuses rows that repeat another
/// row's option values or SKU (the later row fails; the first one stands).
pub fn group_rows(rows: Vec<ImportRow>, errors: &mut Vec<RowError>) -> Vec<ProductGroup> {
    let mut groups: Vec<ProductGroup> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut skus: HashMap<String, u64> = HashMap::new();
    for row in rows {
        if let Some(sku) = &row.sku
            && let Some(first) = skus.get(sku)
        {
            errors.push(row_error(row.line, Some("sku"), format!("SKU {sku} is already on line {first}")));
            continue;
        }
        let at = *position.entry(row.handle.clone()).or_insert_with(|| {
            groups.push(ProductGroup { handle: row.handle.clone(), rows: Vec::new() });
            groups.len() - 1
        });
        let group = &mut groups[at];
        let values =
            |r: &ImportRow| r.options.iter().map(|(n, v)| (n.to_lowercase(), v.to_lowercase())).collect::<Vec<_>>();
        if let Some(first) = group.rows.iter().find(|r| values(r) == values(&row)) {
            let line = first.line;
            errors.push(row_error(row.line, None, format!("the same option values as line {line}")));
            continue;
        }
        if let Some(sku) = &row.sku {
            skus.insert(sku.clone(), row.line);
        }
        group.rows.push(row);
    }
    groups
}

/// A row's changes applied to a variant; `None` when the variant already holds them (so a
/// second import of the same file writes nothing).
pub fn apply_row(variant: &Variant, row: &ImportRow) -> Option<Variant> {
    let mut next = variant.clone();
    if row.sku.is_some() {
        next.sku = row.sku.clone();
    }
    if row.barcode.is_some() {
        next.barcode = row.barcode.clone();
    }
    if let Some(p) = row.price_minor {
        next.price_minor = p;
    }
    if row.compare_at_price_minor.is_some() {
        next.compare_at_price_minor = row.compare_at_price_minor;
    }
    if row.weight_grams.is_some() {
        next.weight_grams = row.weight_grams;
    }
    if let Some(s) = row.stock_quantity {
        next.stock_quantity = s;
    }
    if let Some(p) = row.inventory_policy {
        next.inventory_policy = p;
    }
    (next != *variant).then_some(next)
}

// ---------------------------------------------------------------- bulk updates

/// Which variants a bulk update reaches: every active variant of the products matching all
/// the given criteria.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VariantFilter {
    /// These products only.
    pub product_ids: Option<Vec<String>>,
    /// Products carrying this tag.
    pub tag: Option<String>,
    pub product_status: Option<ProductStatus>,
}

/// What a bulk update does to each variant it reaches. At most one of each pair
/// (`price_minor` / `price_adjustment_percent`, `stock_quantity` / `stock_adjustment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VariantChanges {
    pub price_minor: Option<i64>,
    /// E.g. `-10` for 10 % off, rounded half up to the minor unit; -100..=1000.
    pub price_adjustment_percent: Option<i32>,
    pub compare_at_price_minor: Option<i64>,
    pub stock_quantity: Option<i64>,
    /// Added to the stock (negative to take away).
    pub stock_adjustment: Option<i64>,
    pub inventory_policy: Option<InventoryPolicy>,
}

/// One variant of a bulk update by list, by SKU or by ids, with its own changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BulkItem {
    pub sku: Option<String>,
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    #[serde(flatten)]
    pub changes: VariantChanges,
}

pub fn check_changes(c: &VariantChanges, at: &str, errors: &mut Vec<FieldError>) {
    if c.price_minor.is_some() && c.price_adjustment_percent.is_some() {
        errors.push(FieldError::new(
            format!("{at}/price_adjustment_percent"),
            "give price_minor or an adjustment, not both",
        ));
    }
    if c.stock_quantity.is_some() && c.stock_adjustment.is_some() {
        errors
            .push(FieldError::new(format!("{at}/stock_adjustment"), "give stock_quantity or an adjustment, not both"));
    }
    if let Some(p) = c.price_minor {
        check_price(p, &format!("{at}/price_minor"), errors);
    }
    if let Some(p) = c.compare_at_price_minor {
        check_price(p, &format!("{at}/compare_at_price_minor"), errors);
    }
    if let Some(pct) = c.price_adjustment_percent
        && !(-100..=1000).contains(&pct)
    {
        errors.push(FieldError::new(format!("{at}/price_adjustment_percent"), "must be -100..=1000"));
    }
    for (value, name) in [(c.stock_quantity, "stock_quantity"), (c.stock_adjustment, "stock_adjustment")] {
        if value.is_some_and(|v| !(-1_000_000_000..=1_000_000_000).contains(&v)) {
            errors.push(FieldError::new(format!("{at}/{name}"), "must be within ±1,000,000,000"));
        }
    }
    if *c == VariantChanges::default() {
        errors.push(FieldError::new(at.to_owned(), "no change given"));
    }
}

/// The changes applied to a variant; `None` when nothing differs.
pub fn apply_changes(variant: &Variant, c: &VariantChanges) -> Option<Variant> {
    let mut next = variant.clone();
    if let Some(p) = c.price_minor {
        next.price_minor = p;
    }
    if let Some(pct) = c.price_adjustment_percent {
        next.price_minor = adjust_price(next.price_minor, pct);
    }
    if c.compare_at_price_minor.is_some() {
        next.compare_at_price_minor = c.compare_at_price_minor;
    }
    if let Some(s) = c.stock_quantity {
        next.stock_quantity = s;
    }
    if let Some(delta) = c.stock_adjustment {
        next.stock_quantity = next.stock_quantity.saturating_add(delta);
    }
    if let Some(p) = c.inventory_policy {
        next.inventory_policy = p;
    }
    (next != *variant).then_some(next)
}

/// Option values of a row, resolved against a product's options (by name and value text,
/// case-insensitively): option id → value id; `None` if a value is missing.
pub fn row_combination(
    options: &[crate::catalog::model::ProductOption],
    row: &ImportRow,
) -> Option<BTreeMap<String, String>> {
    let mut combination = BTreeMap::new();
    for (name, value) in &row.options {
        let option = options.iter().find(|o| o.name.eq_ignore_ascii_case(name))?;
        let found = option.values.iter().find(|v| v.value.to_lowercase() == value.to_lowercase())?;
        combination.insert(option.id.clone(), found.id.clone());
    }
    (combination.len() == options.len()).then_some(combination)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "handle,title,option1_name,option1_value,price_minor,sku,stock_quantity\n\
        tee,Tee,Size,S,1000,TEE-S,3\n\
        tee,,Size,M,oops,TEE-M,3\n\
        tee,,Size,S,1000,TEE-S2,1\n\
        mug,\"Mug, \"\"big\"\"\",,,500,TEE-S,\n\
        ,,,,,,\n\
        bad handle!,X,,,1,,\n";

    #[test]
    fn rows_parse_with_line_numbers_and_row_errors() {
        let (rows, mut errors) = parse_csv(FILE).unwrap();
        let groups = group_rows(rows, &mut errors);
        let lines: Vec<(u64, Option<String>)> = errors.iter().map(|e| (e.line.unwrap(), e.pointer.clone())).collect();
        assert_eq!(
            lines,
            [(3, Some("/price_minor".into())), (7, Some("/handle".into())), (4, None), (5, Some("/sku".into()))]
        );
        assert_eq!(groups.len(), 1, "mug's only row repeats a SKU");
        assert_eq!(groups[0].rows.len(), 1);
        assert!(parse_csv("handle,colour\n").is_err());
        assert!(parse_csv("title\nx\n").is_err());
        let (rows, _) = parse_csv("handle,title\nmug,\"Mug, \"\"big\"\"\"\n").unwrap();
        assert_eq!(rows[0].title.as_deref(), Some("Mug, \"big\""));
    }

    #[test]
    fn adjustments_round_half_up_and_no_change_is_none() {
        let product = crate::catalog::model::test_product(vec![], 1999);
        let v = Variant::new(&product, "v".into(), BTreeMap::new(), "");
        let cut =
            VariantChanges { price_adjustment_percent: Some(-10), stock_adjustment: Some(4), ..Default::default() };
        let next = apply_changes(&v, &cut).unwrap();
        assert_eq!((next.price_minor, next.stock_quantity), (1799, 4));
        assert!(apply_changes(&v, &VariantChanges { price_minor: Some(1999), ..Default::default() }).is_none());
        let mut errors = vec![];
        check_changes(
            &VariantChanges { price_minor: Some(1), price_adjustment_percent: Some(1), ..Default::default() },
            "",
            &mut errors,
        );
        check_changes(&VariantChanges::default(), "/items/0", &mut errors);
        assert_eq!(errors.len(), 2);
    }
}
