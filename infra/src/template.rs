//! Reads what the local stack needs from `template.yaml`, so the emulator is provisioned
//! with exactly what is deployed: the table's keys and indexes, the buckets, and every
//! function with its binary and HTTP route.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use crate::InfraError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// `(name, type)` of every key attribute.
    pub attributes: Vec<(String, String)>,
    pub hash_key: String,
    pub range_key: Option<String>,
    /// `(index name, hash, range)`; projection ALL.
    pub global_indexes: Vec<(String, String, Option<String>)>,
    pub ttl_attribute: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    /// `(method, path)` of its HttpApi event, if it has one.
    pub http: Option<(String, String)>,
}

pub struct Template {
    root: Value,
}

/// The workspace root (where `template.yaml` lives), from this crate's manifest dir.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn key_schema(v: &Value) -> (Option<String>, Option<String>) {
    let mut hash = None;
    let mut range = None;
    for k in v.as_sequence().into_iter().flatten() {
        let name = str_of(&k["AttributeName"]);
        match k["KeyType"].as_str() {
            Some("HASH") => hash = name,
            Some("RANGE") => range = name,
            _ => {}
        }
    }
    (hash, range)
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, InfraError> {
        let text = std::fs::read_to_string(path)?;
        let root =
            serde_yaml_ng::from_str(&text).map_err(|e| InfraError::Template(e.to_string()))?;
        Ok(Self { root })
    }

    pub fn load_default() -> Result<Self, InfraError> {
        Self::load(&workspace_root().join("template.yaml"))
    }

    fn resources(&self) -> impl Iterator<Item = (String, &Value)> {
        self.root["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
    }

    pub fn table(&self, logical_id: &str) -> Result<TableSpec, InfraError> {
        let props = &self.root["Resources"][logical_id]["Properties"];
        if props.is_null() {
            return Err(InfraError::Template(format!("no resource {logical_id}")));
        }
        let attributes = props["AttributeDefinitions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|a| Some((str_of(&a["AttributeName"])?, str_of(&a["AttributeType"])?)))
            .collect();
        let (hash, range_key) = key_schema(&props["KeySchema"]);
        let hash_key =
            hash.ok_or_else(|| InfraError::Template(format!("{logical_id} has no HASH key")))?;
        let global_indexes = props["GlobalSecondaryIndexes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|gsi| {
                let (hash, range) = key_schema(&gsi["KeySchema"]);
                Some((str_of(&gsi["IndexName"])?, hash?, range))
            })
            .collect();
        let ttl = &props["TimeToLiveSpecification"];
        let ttl_attribute = if ttl["Enabled"].as_bool() == Some(true) {
            str_of(&ttl["AttributeName"])
        } else {
            None
        };
        Ok(TableSpec {
            attributes,
            hash_key,
            range_key,
            global_indexes,
            ttl_attribute,
        })
    }

    /// Logical ids of every S3 bucket.
    pub fn buckets(&self) -> Vec<String> {
        self.resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::S3::Bucket"))
            .map(|(id, _)| id)
            .collect()
    }

    pub fn functions(&self) -> Vec<FunctionSpec> {
        self.resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(logical_id, r)| {
                let binary =
                    str_of(&r["Metadata"]["BuildProperties"]["Binary"]).unwrap_or_default();
                let http = r["Properties"]["Events"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .find_map(|(_, e)| {
                        (e["Type"].as_str() == Some("HttpApi"))
                            .then(|| {
                                Some((
                                    str_of(&e["Properties"]["Method"])?.to_uppercase(),
                                    str_of(&e["Properties"]["Path"])?,
                                ))
                            })
                            .flatten()
                    });
                FunctionSpec {
                    logical_id,
                    binary,
                    http,
                }
            })
            .collect()
    }

    /// A parameter's default value.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        str_of(&self.root["Parameters"][name]["Default"])
    }

    /// The raw document, for checks that look at more than the above.
    pub fn root(&self) -> &Value {
        &self.root
    }
}
