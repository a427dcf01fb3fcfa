//! Opaque pagination cursors. A cursor is the last evaluated key, base64url-encoded; when one
//! comes back it is checked against the listing it is used on, so a cursor from another
//! tenant's (or another) listing is refused instead of steering the Query elsewhere.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub(crate) BTreeMap<String, String>);

impl Cursor {
    pub fn encode(&self) -> String {
        // A BTreeMap of strings always serialises.
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(raw: &str) -> Result<Self, StoreError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| StoreError::BadCursor("not base64url"))?;
        let map = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor("not a cursor"))?;
        Ok(Self(map))
    }

    pub(crate) fn from_last_key(key: &HashMap<String, AttributeValue>) -> Result<Self, StoreError> {
        key.iter()
            .map(|(name, value)| match value {
                AttributeValue::S(s) => Ok((name.clone(), s.clone())),
                _ => Err(StoreError::Corrupt(format!("key attribute {name} is not a string"))),
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The start key for a Query on partition `partition_attr = partition`, only if the
    /// cursor was issued by that same listing.
    pub(crate) fn start_key(
        &self,
        partition_attr: &str,
        partition: &str,
        sort_attr: &str,
        sort_prefix: Option<&str>,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        if self.0.get(partition_attr).map(String::as_str) != Some(partition) {
            return Err(StoreError::BadCursor("it belongs to another listing"));
        }
        let sort = self.0.get(sort_attr).ok_or(StoreError::BadCursor("it has no position"))?;
        if sort_prefix.is_some_and(|prefix| !sort.starts_with(prefix)) {
            return Err(StoreError::BadCursor("it belongs to another listing"));
        }
        // Exactly the key attributes of the queried table or index: anything else would make
        // DynamoDB refuse the start key (a 500) or point the page somewhere else.
        let table_keys = [super::attr::PK, super::attr::SK];
        let index_keys = [super::attr::PK, super::attr::SK, super::attr::GSI1_PK, super::attr::GSI1_SK];
        let expected: &[&str] = if partition_attr == super::attr::PK { &table_keys } else { &index_keys };
        if self.0.len() != expected.len() || expected.iter().any(|k| !self.0.contains_key(*k)) {
            return Err(StoreError::BadCursor("it has the wrong key attributes"));
        }
        Ok(self.0.iter().map(|(k, v)| (k.clone(), AttributeValue::S(v.clone()))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(pairs: &[(&str, &str)]) -> Cursor {
        Cursor(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn round_trips_and_refuses_other_listings() {
        let c = cursor(&[("PK", "V#a"), ("SK", "ITEM#2")]);
        let back = Cursor::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert!(back.start_key("PK", "V#a", "SK", Some("ITEM#")).is_ok());
        assert!(back.start_key("PK", "V#b", "SK", Some("ITEM#")).is_err());
        assert!(back.start_key("PK", "V#a", "SK", Some("ORDER#")).is_err());
        assert!(Cursor::decode("%%%").is_err());
        let extra = cursor(&[("PK", "V#a"), ("SK", "ITEM#2"), ("GSI1PK", "x")]);
        assert!(extra.start_key("PK", "V#a", "SK", None).is_err());
        let index = cursor(&[("PK", "V#a"), ("SK", "ITEM#2"), ("GSI1PK", "V#a#X"), ("GSI1SK", "1")]);
        assert!(index.start_key("GSI1PK", "V#a#X", "GSI1SK", None).is_ok());
        let partial = cursor(&[("GSI1PK", "V#a#X"), ("GSI1SK", "1")]);
        assert!(partial.start_key("GSI1PK", "V#a#X", "GSI1SK", None).is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("[1]")).is_err());
    }
}
