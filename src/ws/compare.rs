//! A `compare` message as the connection resolves it before the session
//! sees it: the wire's shape checked, version B found in the record and
//! its file probed (blocking work the session task must not do). The
//! driver drags a wipe with many messages, so the last version resolved
//! is kept and only the layout is read again.

use std::sync::Arc;

use crate::http::{wire_version, App};
use crate::live::CompareRequest;
use crate::protocol::ErrorCode;
use crate::session::{Compare, CompareMode, WIPE_FULL};

use super::Reject;

/// The last version B this connection resolved.
pub(super) type Resolved = Option<Arc<CompareRequest>>;

pub(super) async fn resolve(
    app: &Arc<App>,
    cache: &mut Resolved,
    version: Option<String>,
    mode: Option<String>,
    wipe: Option<f64>,
) -> Result<Option<CompareRequest>, Reject> {
    let malformed = |m: &str| Reject::new(ErrorCode::Malformed, m);
    let mode = match mode.as_deref() {
        None | Some("side") => CompareMode::Side,
        Some("wipe") => CompareMode::Wipe,
        Some(_) => return Err(malformed("a compare's mode is side or wipe")),
    };
    let wipe_permille = match wipe {
        None => WIPE_FULL / 2,
        Some(w) if (0.0..=1.0).contains(&w) => (w * f64::from(WIPE_FULL)).round() as u16,
        Some(_) => return Err(malformed("a compare's wipe lies in 0..=1")),
    };
    let Some(id) = version else {
        return Ok(None);
    };
    let resolved = match cache.as_ref().filter(|r| r.other.id == id) {
        Some(hit) => hit.clone(),
        None => {
            let app = app.clone();
            let wanted = id.clone();
            let found = tokio::task::spawn_blocking(move || {
                let row = app
                    .store
                    .version(&wanted)
                    .map_err(|e| Reject::new(ErrorCode::Store, e.to_string()))?
                    .ok_or_else(|| {
                        Reject::new(ErrorCode::UnknownVersion, "there is no such version")
                    })?;
                let cannot = |m: String| Reject::new(ErrorCode::CannotCompare, m);
                let setup = app
                    .prepare_media(&row.path)
                    .map_err(|e| cannot(e.to_string()))?;
                if setup.checksum.0 != row.checksum {
                    return Err(cannot(format!(
                        "{} has changed since it was recorded as {} v{}",
                        row.path, row.item, row.number
                    )));
                }
                Ok(Arc::new(CompareRequest {
                    compare: Compare {
                        version: row.id.clone(),
                        mode: CompareMode::Side,
                        wipe_permille: 0,
                    },
                    other: wire_version(&row),
                    media: setup.playable(),
                }))
            })
            .await
            .map_err(|e| Reject::new(ErrorCode::CannotCompare, e.to_string()))??;
            *cache = Some(found.clone());
            found
        }
    };
    let mut request = (*resolved).clone();
    request.compare.mode = mode;
    request.compare.wipe_permille = wipe_permille;
    Ok(Some(request))
}
