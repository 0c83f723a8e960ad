use axum::Router;

use crate::AppState;

pub(crate) const TEMPLATES: &[(&str, &str)] = &[];

pub fn router() -> Router<AppState> {
    Router::new()
}
