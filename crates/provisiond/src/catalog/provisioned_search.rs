//! `SearchProvisionedProducts`: the account's provisioned products (`AccessLevelFilter` `User`:
//! the caller's), narrowed by `SearchQuery` over the fields AWS documents, sorted by the
//! `SortBy` values AWS documents, counted (`TotalResultsCount`) and paged. Without a query, a
//! sort or an access filter a page is read straight from the store; otherwise every provisioned
//! product of the account streams past and only the page is kept (`paging::TopPage`).

use super::access_level::{self, AccessLevel};
use super::paging_size;
use super::product;
use super::provisioning::ProvisionedProduct;
use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::AwsError;
use std::cmp::Reverse;
use std::collections::HashMap;

/// How many provisioned products a filtered or sorted search decodes at a time.
const SEARCH_BATCH: usize = 500;

/// How many (product, version) names one call remembers (past that it starts over).
const REMEMBERED_NAMES: usize = 10_000;

/// `SearchProvisionedProducts`.
pub fn search(
    ctx: &RequestContext,
    input: sc::SearchProvisionedProductsInput,
) -> Result<sc::SearchProvisionedProductsOutput, AwsError> {
    let scope = ctx.scope();
    let access = AccessLevel::of(
        ctx,
        input.access_level_filter.as_ref(),
        access_level::Default::Account,
    )?;
    let queries = Query::all(input.filters.as_ref());
    let sort = SortBy::given(input.sort_by.as_deref())?;
    let size = paging_size(input.page_size);
    let descending = input.sort_order.as_deref() == Some("DESCENDING");
    let listing = format!(
        "provisioned-products:{}:{}",
        sort.map_or("creation", SortBy::as_str),
        if descending {
            "descending"
        } else {
            "ascending"
        }
    );
    let bad_token = || ErrorCode::InvalidParametersException.with("The page token is not valid.");
    // A page continues after the sort key of the last item of the one before: the sorted
    // field's value and the creation position, or the creation position alone.
    let after: Option<SearchKey> = match (sort, input.page_token.as_deref()) {
        (_, None | Some("")) => None,
        (Some(_), Some(token)) => Some(
            paging::key_of_token::<(String, i64)>(&listing, token)
                .map(|(value, seq)| SearchKey::of(value, seq, descending))
                .ok_or_else(bad_token)?,
        ),
        (None, Some(token)) => Some(
            paging::position(token)
                .map(|seq| SearchKey::of(String::new(), seq, descending))
                .ok_or_else(bad_token)?,
        ),
    };
    // Without a query, a sort or an access filter, a page is read straight from the store in
    // creation order: its cost does not depend on how many provisioned products there are.
    let plain =
        queries.is_empty() && sort.is_none() && !descending && access == AccessLevel::Account;
    let (page, next, total, names) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let mut names = Names::default();
        let (page, next, total) = if plain {
            let after = after.as_ref().map(SearchKey::seq);
            let rows = store::list::<ProvisionedProduct>(
                tx,
                Kind::ProvisionedProduct,
                &scope,
                "",
                after,
                size + 1,
            )?;
            let total = tx.count(Kind::ProvisionedProduct, &scope, "")? as i32;
            let (page, next) = paging::split_page(rows, size);
            (page, next, total)
        } else {
            let mut top = paging::TopPage::new(after.clone(), size);
            let mut total = 0i32;
            let mut from = None;
            loop {
                let batch: Vec<(i64, ProvisionedProduct)> =
                    store::list(tx, Kind::ProvisionedProduct, &scope, "", from, SEARCH_BATCH)?;
                let ended = batch.len() < SEARCH_BATCH;
                from = batch.last().map(|(seq, _)| *seq).or(from);
                for (seq, pp) in batch {
                    if !access.admits(&pp.owner_principal) {
                        continue;
                    }
                    let mut all_match = true;
                    for q in &queries {
                        if !q.matches(&pp, &mut |pp| names.of(tx, &scope, pp))? {
                            all_match = false;
                            break;
                        }
                    }
                    if all_match {
                        total = total.saturating_add(1);
                        let value = sort.map(|s| s.value(&pp).to_string()).unwrap_or_default();
                        top.offer(SearchKey::of(value, seq, descending), pp);
                    }
                }
                if ended {
                    break;
                }
            }
            let (rows, more) = top.finish();
            let next = more
                .then(|| {
                    rows.last()
                        .map(|(key, _)| key.token(sort.is_some(), &listing))
                })
                .flatten();
            (rows.into_iter().map(|(_, pp)| pp).collect(), next, total)
        };
        // The names of each product and version on the page, read once each.
        for pp in &page {
            names.of(tx, &scope, pp)?;
        }
        Ok::<_, AwsError>((page, next, total, names))
    })?;
    let attributes = page
        .into_iter()
        .map(|pp| {
            let (product_name, version_name) = names.known(&pp).unwrap_or_default();
            pp.attribute(product_name, version_name)
        })
        .collect();
    Ok(sc::SearchProvisionedProductsOutput {
        provisioned_products: Some(attributes),
        total_results_count: Some(total),
        next_page_token: next,
    })
}

/// `SortBy`: the fields AWS documents (`arn`, `id`, `name`, `lastRecordId`); `createdTime`, and
/// no value, keep creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Arn,
    Id,
    Name,
    LastRecordId,
}

impl SortBy {
    /// The sort a call asks for; `None` for creation order.
    fn given(wire: Option<&str>) -> Result<Option<SortBy>, AwsError> {
        Ok(match wire {
            None | Some("createdTime") => None,
            Some("arn") => Some(SortBy::Arn),
            Some("id") => Some(SortBy::Id),
            Some("name") => Some(SortBy::Name),
            Some("lastRecordId") => Some(SortBy::LastRecordId),
            Some(other) => {
                return Err(ErrorCode::InvalidParametersException.with(format!(
                    "SortBy {other} is not one of arn, id, name, lastRecordId."
                )))
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SortBy::Arn => "arn",
            SortBy::Id => "id",
            SortBy::Name => "name",
            SortBy::LastRecordId => "lastRecordId",
        }
    }

    fn value(self, pp: &ProvisionedProduct) -> &str {
        match self {
            SortBy::Arn => &pp.arn,
            SortBy::Id => &pp.id,
            SortBy::Name => &pp.name,
            SortBy::LastRecordId => &pp.last_record_id,
        }
    }
}

/// Where a provisioned product sorts in a search: by the sorted field's value (then creation)
/// or by creation alone, either way round.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SearchKey {
    Ascending(String, i64),
    Descending(Reverse<(String, i64)>),
}

impl SearchKey {
    fn of(value: String, seq: i64, descending: bool) -> SearchKey {
        if descending {
            SearchKey::Descending(Reverse((value, seq)))
        } else {
            SearchKey::Ascending(value, seq)
        }
    }

    fn parts(&self) -> (&str, i64) {
        match self {
            SearchKey::Ascending(value, seq) | SearchKey::Descending(Reverse((value, seq))) => {
                (value, *seq)
            }
        }
    }

    fn seq(&self) -> i64 {
        self.parts().1
    }

    /// The page token that continues after this key: the key itself in a sorted `listing`,
    /// the creation position otherwise.
    fn token(&self, sorted: bool, listing: &str) -> String {
        let (value, seq) = self.parts();
        if sorted {
            paging::token_after_key(listing, &(value, seq))
        } else {
            paging::token_after(seq)
        }
    }
}

/// A field `SearchQuery` may name (`field:value`), as AWS lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Arn,
    CreatedTime,
    Id,
    LastRecordId,
    IdempotencyToken,
    Name,
    PhysicalId,
    ProductId,
    ProvisioningArtifactId,
    Type,
    Status,
    Tags,
    UserArn,
    UserArnSession,
    LastProvisioningRecordId,
    LastSuccessfulProvisioningRecordId,
    ProductName,
    ProvisioningArtifactName,
}

impl Field {
    /// The field a query's prefix names, compared without regard to case (a query is
    /// lowercased whole).
    fn named(lowercased: &str) -> Option<Field> {
        Some(match lowercased {
            "arn" => Field::Arn,
            "createdtime" => Field::CreatedTime,
            "id" => Field::Id,
            "lastrecordid" => Field::LastRecordId,
            "idempotencytoken" => Field::IdempotencyToken,
            "name" => Field::Name,
            "physicalid" => Field::PhysicalId,
            "productid" => Field::ProductId,
            "provisioningartifactid" => Field::ProvisioningArtifactId,
            "type" => Field::Type,
            "status" => Field::Status,
            "tags" => Field::Tags,
            "userarn" => Field::UserArn,
            "userarnsession" => Field::UserArnSession,
            "lastprovisioningrecordid" => Field::LastProvisioningRecordId,
            "lastsuccessfulprovisioningrecordid" => Field::LastSuccessfulProvisioningRecordId,
            "productname" => Field::ProductName,
            "provisioningartifactname" => Field::ProvisioningArtifactName,
            _ => return None,
        })
    }
}

/// One `SearchQuery` value, lowercased: a case-insensitive substring of a named field
/// (`field:value`), or of the name, id, status or type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Query {
    Anywhere(String),
    In(Field, String),
}

impl Query {
    /// The call's queries, each once however often a request repeats it (every product is
    /// checked against every query). A prefix that names no field is part of the text.
    fn all(filters: Option<&std::collections::BTreeMap<String, Vec<String>>>) -> Vec<Query> {
        let mut queries: Vec<Query> = filters
            .and_then(|f| f.get("SearchQuery"))
            .into_iter()
            .flatten()
            .map(|q| {
                let q = q.to_lowercase();
                match q
                    .split_once(':')
                    .and_then(|(field, value)| Some((Field::named(field)?, value)))
                {
                    Some((field, value)) => Query::In(field, value.to_string()),
                    None => Query::Anywhere(q),
                }
            })
            .collect();
        queries.sort_unstable();
        queries.dedup();
        queries
    }

    /// Whether `pp` matches; `names` gives its product's and version's names.
    fn matches(
        &self,
        pp: &ProvisionedProduct,
        names: &mut dyn FnMut(&ProvisionedProduct) -> Result<ProductNames, AwsError>,
    ) -> Result<bool, AwsError> {
        let (field, needle) = match self {
            Query::Anywhere(needle) => {
                return Ok([
                    pp.name.as_str(),
                    pp.id.as_str(),
                    pp.status.as_str(),
                    pp.product_type.as_str(),
                ]
                .iter()
                .any(|f| contains_folded(f, needle)))
            }
            Query::In(field, needle) => (*field, needle.as_str()),
        };
        let text = |value: &str| contains_folded(value, needle);
        Ok(match field {
            Field::Arn => text(&pp.arn),
            Field::CreatedTime => text(&crate::time::format_iso8601(pp.created_ms)),
            Field::Id => text(&pp.id),
            Field::LastRecordId => text(&pp.last_record_id),
            Field::IdempotencyToken => text(&pp.idempotency_token),
            Field::Name => text(&pp.name),
            Field::PhysicalId => pp.physical_id().is_some_and(|p| text(&p)),
            Field::ProductId => text(&pp.product_id),
            Field::ProvisioningArtifactId => text(&pp.artifact_id),
            Field::Type => text(&pp.product_type),
            Field::Status => text(pp.status.as_str()),
            Field::Tags => pp.tags.iter().any(|(k, v)| text(&format!("{k}={v}"))),
            Field::UserArn => text(&pp.owner_principal),
            // provisiond keeps no session of the caller (`UserArnSession` is never set).
            Field::UserArnSession => false,
            Field::LastProvisioningRecordId => text(&pp.last_provisioning_record_id),
            Field::LastSuccessfulProvisioningRecordId => pp
                .last_successful_provisioning_record_id
                .as_deref()
                .is_some_and(text),
            Field::ProductName => text(&names(pp)?.0),
            Field::ProvisioningArtifactName => names(pp)?.1.as_deref().is_some_and(text),
        })
    }
}

/// Whether `field`, lowercased, contains `needle` (lowercased already). Names, ids, statuses
/// and types are ASCII, compared in place; anything else is lowercased first.
fn contains_folded(field: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if field.is_ascii() {
        field
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    } else {
        field.to_lowercase().contains(needle)
    }
}

/// A product's name and its version's (a version may have none).
type ProductNames = (String, Option<String>);

/// The names of the products and versions provisioned products come from, read once each in
/// a call: a page's provisioned products, and a search's, often share a few.
#[derive(Default)]
struct Names(HashMap<(String, String), ProductNames>);

impl Names {
    /// The product's name and the version's of `pp` (empty when the product is gone).
    fn of(
        &mut self,
        tx: &mut dyn Tx,
        scope: &str,
        pp: &ProvisionedProduct,
    ) -> Result<ProductNames, AwsError> {
        let key = (pp.product_id.clone(), pp.artifact_id.clone());
        if let Some(known) = self.0.get(&key) {
            return Ok(known.clone());
        }
        let names = match product::get(tx, scope, &pp.product_id) {
            Ok(prod) => {
                let version = product::get_artifact(tx, scope, &pp.product_id, &pp.artifact_id)
                    .ok()
                    .and_then(|a| a.name);
                (prod.name, version)
            }
            Err(_) => (String::new(), None),
        };
        if self.0.len() >= REMEMBERED_NAMES {
            self.0.clear();
        }
        self.0.insert(key, names.clone());
        Ok(names)
    }

    /// What [`Names::of`] read for `pp`, if it did.
    fn known(&self, pp: &ProvisionedProduct) -> Option<ProductNames> {
        self.0
            .get(&(pp.product_id.clone(), pp.artifact_id.clone()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_query_matches_whatever_the_case_of_the_field() {
        let lowered = |q: &str| q.to_lowercase();
        assert!(contains_folded("Web-Server-01", &lowered("SERVER")));
        assert!(contains_folded("Web-Server-01", &lowered("web-server-01")));
        assert!(contains_folded("AVAILABLE", &lowered("avail")));
        assert!(contains_folded("anything", ""));
        assert!(!contains_folded("Web", &lowered("web-server")));
        assert!(!contains_folded("Web-Server", &lowered("servers")));
        // The Kelvin sign lowercases to an ASCII k, as `str::to_lowercase` has it.
        assert!(contains_folded("kube", &lowered("\u{212A}UBE")));
        // A field outside ASCII is lowercased whole.
        assert!(contains_folded("ÉTÉ-2026", &lowered("été")));
        assert!(!contains_folded("ÉTÉ-2026", &lowered("ete")));
    }

    #[test]
    fn queries_name_the_documented_fields_and_repeat_nothing() {
        let filters: std::collections::BTreeMap<String, Vec<String>> = [(
            "SearchQuery".to_string(),
            vec![
                "productName:Bucket".into(),
                "PRODUCTNAME:bucket".into(),
                "status:AVAILABLE".into(),
                "http://example".into(),
                "web".into(),
                "WEB".into(),
            ],
        )]
        .into_iter()
        .collect();
        let queries = Query::all(Some(&filters));
        assert_eq!(queries.len(), 4, "{queries:?}");
        assert!(queries.contains(&Query::In(Field::ProductName, "bucket".into())));
        assert!(queries.contains(&Query::In(Field::Status, "available".into())));
        // A prefix that names no field is text.
        assert!(queries.contains(&Query::Anywhere("http://example".into())));
        assert!(queries.contains(&Query::Anywhere("web".into())));
    }
}
