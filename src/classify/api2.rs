//! cPanel API 2 on `/json-api/cpanel` (cpanel-wire.md §4): the `cpanel_jsonapi_*` selectors.
//!
//! Owns the selector rules: `cpanel_jsonapi_apiversion` exactly `2` (anything else is API 1,
//! UAPI through this door, or unknown: `not_an_api_call`; missing is a 400), module and
//! function present and well-formed, each selector at most once and never as a `-N` family
//! member, no other `cpanel_jsonapi_*` key (in any case). Selectors leave `params`;
//! `cpanel_jsonapi_user` is dropped (the forwarder writes the upstream user). `api2_*` meta
//! parameters stay in `params`.

use crate::call::{Api, CpanelCall, Params};

use super::path::{is_function_name, is_module_name};
use super::{bad, ClassifyError};

const PREFIX: &str = "cpanel_jsonapi_";
const MODULE: &str = "cpanel_jsonapi_module";
const FUNC: &str = "cpanel_jsonapi_func";
const VERSION: &str = "cpanel_jsonapi_apiversion";
const USER: &str = "cpanel_jsonapi_user";

/// Builds the API 2 call from the merged parameters.
pub(super) fn call(params: Params) -> Result<CpanelCall, ClassifyError> {
    let mut rest = Params::new();
    let (mut module, mut func, mut version) = (None, None, None);
    for (key, value) in params.iter() {
        let slot = match key {
            MODULE => &mut module,
            FUNC => &mut func,
            VERSION => &mut version,
            USER => continue,
            k if k.get(..PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(PREFIX)) => {
                return Err(bad("unknown or repeated cpanel_jsonapi_* selector"));
            }
            _ => {
                rest.set(key, value);
                continue;
            }
        };
        *slot = Some(value.to_owned());
    }
    check_version(version.as_deref())?;
    let module = module.ok_or_else(|| bad("missing cpanel_jsonapi_module"))?;
    let func = func.ok_or_else(|| bad("missing cpanel_jsonapi_func"))?;
    if !is_module_name(&module) {
        return Err(bad("invalid cpanel_jsonapi_module"));
    }
    if !is_function_name(&func) {
        return Err(bad("invalid cpanel_jsonapi_func"));
    }
    Ok(CpanelCall::new(Api::Api2, module, func, rest))
}

fn check_version(version: Option<&str>) -> Result<(), ClassifyError> {
    match version {
        Some("2") => Ok(()),
        Some(_) => Err(ClassifyError::NotAnApiCall(
            "only cpanel_jsonapi_apiversion=2 is served on /json-api/cpanel".into(),
        )),
        None => Err(bad("missing cpanel_jsonapi_apiversion")),
    }
}
