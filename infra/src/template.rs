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
    /// The `AuthType` of the function's URL, for webhooks (`NONE`: the signature authenticates).
    pub function_url: Option<String>,
}

/// An SQS queue as the template declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout_s: Option<i64>,
    pub retention_s: Option<i64>,
    /// `(dead-letter queue logical id, maxReceiveCount)`.
    pub dead_letter: Option<(String, i64)>,
}

/// The SQS event source of a worker function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSource {
    pub queue_logical_id: String,
    pub batch_size: i64,
    /// `ScalingConfig.MaximumConcurrency`: how many batches run at once.
    pub maximum_concurrency: i64,
    pub report_batch_item_failures: bool,
}

#[derive(Clone)]
pub struct Template {
    root: Value,
}

/// The workspace root (where `template.yaml` lives), from this crate's manifest dir.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// The resource an `!GetAtt X.Arn` (or `Fn::GetAtt: [X, Arn]`) names.
fn get_att_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" || tagged.tag == "!GetAtt" => {
            tagged.value.as_str().and_then(|s| s.split('.').next()).map(str::to_owned)
        }
        other => other["Fn::GetAtt"][0].as_str().map(str::to_owned),
    }
}

fn int_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
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
        let root = serde_yaml_ng::from_str(&text).map_err(|e| InfraError::Template(e.to_string()))?;
        Ok(Self { root })
    }

    pub fn load_default() -> Result<Self, InfraError> {
        Self::load(&workspace_root().join("template.yaml"))
    }

    fn resources(&self) -> impl Iterator<Item = (String, &Value)> {
        self.root["Resources"].as_mapping().into_iter().flatten().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v)))
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
        let hash_key = hash.ok_or_else(|| InfraError::Template(format!("{logical_id} has no HASH key")))?;
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
        let ttl_attribute = if ttl["Enabled"].as_bool() == Some(true) { str_of(&ttl["AttributeName"]) } else { None };
        Ok(TableSpec { attributes, hash_key, range_key, global_indexes, ttl_attribute })
    }

    /// Logical ids of every S3 bucket.
    pub fn buckets(&self) -> Vec<String> {
        self.resources().filter(|(_, r)| r["Type"].as_str() == Some("AWS::S3::Bucket")).map(|(id, _)| id).collect()
    }

    pub fn functions(&self) -> Vec<FunctionSpec> {
        self.resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(logical_id, r)| {
                let binary = str_of(&r["Metadata"]["BuildProperties"]["Binary"]).unwrap_or_default();
                let http = r["Properties"]["Events"].as_mapping().into_iter().flatten().find_map(|(_, e)| {
                    (e["Type"].as_str() == Some("HttpApi"))
                        .then(|| {
                            Some((
                                str_of(&e["Properties"]["Method"])?.to_uppercase(),
                                str_of(&e["Properties"]["Path"])?,
                            ))
                        })
                        .flatten()
                });
                let function_url = str_of(&r["Properties"]["FunctionUrlConfig"]["AuthType"]);
                FunctionSpec { logical_id, binary, http, function_url }
            })
            .collect()
    }

    pub fn queues(&self) -> Vec<QueueSpec> {
        self.resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::SQS::Queue"))
            .map(|(logical_id, r)| {
                let props = &r["Properties"];
                let redrive = &props["RedrivePolicy"];
                let dead_letter =
                    get_att_target(&redrive["deadLetterTargetArn"]).zip(int_of(&redrive["maxReceiveCount"]));
                QueueSpec {
                    logical_id,
                    visibility_timeout_s: int_of(&props["VisibilityTimeout"]),
                    retention_s: int_of(&props["MessageRetentionPeriod"]),
                    dead_letter,
                }
            })
            .collect()
    }

    /// The SQS event source of the function built from `binary`, if it has one.
    pub fn queue_source(&self, binary: &str) -> Option<QueueSource> {
        let (_, function) = self.resources().find(|(_, r)| {
            r["Type"].as_str() == Some("AWS::Serverless::Function")
                && r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary)
        })?;
        function["Properties"]["Events"].as_mapping()?.iter().find_map(|(_, e)| {
            if e["Type"].as_str() != Some("SQS") {
                return None;
            }
            let props = &e["Properties"];
            Some(QueueSource {
                queue_logical_id: get_att_target(&props["Queue"])?,
                batch_size: int_of(&props["BatchSize"]).unwrap_or(10),
                maximum_concurrency: int_of(&props["ScalingConfig"]["MaximumConcurrency"]).unwrap_or(2),
                report_batch_item_failures: props["FunctionResponseTypes"]
                    .as_sequence()
                    .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures"))),
            })
        })
    }

    /// A function's timeout in seconds: its own, or the Globals' (Lambda's default, 3 s, if neither).
    pub fn function_timeout(&self, binary: &str) -> i64 {
        let own = self
            .resources()
            .find(|(_, r)| {
                r["Type"].as_str() == Some("AWS::Serverless::Function")
                    && r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary)
            })
            .and_then(|(_, r)| int_of(&r["Properties"]["Timeout"]));
        own.or_else(|| int_of(&self.root["Globals"]["Function"]["Timeout"])).unwrap_or(3)
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
