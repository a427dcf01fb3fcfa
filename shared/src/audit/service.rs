//! Use cases of the audit log.

use super::dto::AuditList;
use super::repo::AuditLog;
use crate::app::App;
use crate::error::ApiError;
use crate::store::Cursor;
use crate::tenancy::TenantScope;

pub async fn list(app: &App, scope: &TenantScope, limit: i32, cursor: Option<Cursor>) -> Result<AuditList, ApiError> {
    let (items, next) = AuditLog::new(&app.table, scope).list(limit, cursor.as_ref()).await?;
    Ok(AuditList { items, next_cursor: next.map(|c| c.encode()) })
}
