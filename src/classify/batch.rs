//! `Batch::strict` (cpanel-wire.md §5, contract §4.3): the `command` family becomes inner calls,
//! each classified as if it had been called alone.
//!
//! Owns command order (plain `command` first, then `command-N` by number; a number written
//! with a leading zero is refused, as two spellings of one position would be ambiguous), the
//! parameters allowed beside the commands (`api.version`, `api.persona`), the nesting bound
//! [`MAX_BATCH_DEPTH`] and the total bound [`MAX_BATCH_COMMANDS`]. Never authorizes anything.

use crate::call::{family_name, CpanelCall, Params};

use super::path::{is_function_name, is_module_name};
use super::{bad, json, params, uapi_call_at, ClassifyError};

/// How many `Batch::strict` calls may be nested, the outermost included.
pub const MAX_BATCH_DEPTH: usize = 3;

/// How many inner commands one request may carry, over all nesting levels.
pub const MAX_BATCH_COMMANDS: usize = 1000;

/// The command allowance shared by every level of one request.
#[derive(Debug)]
pub(super) struct Budget {
    commands_left: usize,
}

impl Budget {
    pub(super) fn new() -> Self {
        Self {
            commands_left: MAX_BATCH_COMMANDS,
        }
    }

    fn take(&mut self) -> Result<(), ClassifyError> {
        self.commands_left = self.commands_left.checked_sub(1).ok_or_else(|| {
            ClassifyError::BadRequest(format!("too many batch commands (at most {MAX_BATCH_COMMANDS})"))
        })?;
        Ok(())
    }
}

/// Moves `call.params`' `command` family into `call.batch`, classifying each command.
/// `level` is the nesting of `call` itself (1 = the request).
pub(super) fn expand(call: &mut CpanelCall, level: usize, budget: &mut Budget) -> Result<(), ClassifyError> {
    if level > MAX_BATCH_DEPTH {
        return Err(ClassifyError::BadRequest(format!(
            "batches nest at most {MAX_BATCH_DEPTH} deep"
        )));
    }
    let mut commands: Vec<(u64, String)> = Vec::new();
    let mut rest = Params::new();
    for (key, value) in call.params.iter() {
        if family_name(key) == "command" {
            commands.push((command_position(key)?, value.to_owned()));
        } else if key == "api.version" || key == "api.persona" {
            rest.set(key, value);
        } else {
            return Err(bad("Batch::strict accepts only command*, api.version and api.persona"));
        }
    }
    if commands.is_empty() {
        return Err(bad("Batch::strict needs at least one command"));
    }
    commands.sort_by_key(|(position, _)| *position);
    call.params = rest;
    for (_, text) in commands {
        budget.take()?;
        call.batch.push(inner_call(&text, level, budget)?);
    }
    Ok(())
}

/// `command` sorts first (0), `command-N` at N + 1.
fn command_position(key: &str) -> Result<u64, ClassifyError> {
    let Some(number) = key.strip_prefix("command-") else {
        return Ok(0);
    };
    if number.len() > 1 && number.starts_with('0') {
        return Err(bad("batch command numbers must not have leading zeros"));
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| bad("batch command number out of range"))
}

fn inner_call(text: &str, level: usize, budget: &mut Budget) -> Result<CpanelCall, ClassifyError> {
    let command = json::parse_command(text)?;
    if !is_module_name(&command.module) {
        return Err(bad("invalid module name in a batch command"));
    }
    if !is_function_name(&command.function) {
        return Err(bad("invalid function name in a batch command"));
    }
    let args = params::merge(command.args)?;
    uapi_call_at(command.module, command.function, args, Vec::new(), level + 1, budget)
}
