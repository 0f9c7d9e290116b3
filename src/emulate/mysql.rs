//! The UAPI `Mysql` module: databases and database users (`list_databases`, `create_database`,
//! `delete_database`, `list_users`, `create_user`, `delete_user`, `set_privileges_on_database`).
//!
//! Invariant, as cPanel enforces it: every database and user name starts with the account's
//! prefix `USER_`. Passwords are checked for presence and never stored.

use serde_json::{json, Value};

use crate::call::CpanelCall;

use super::reply::UapiResult;
use super::state::{required, Account};

/// MySQL's limit on database names.
const MAX_DATABASE_NAME: usize = 64;
/// cPanel's limit on database user names (MariaDB 10 / MySQL 8).
const MAX_USER_NAME: usize = 47;

/// One database and the users holding privileges on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Database {
    pub users: Vec<String>,
}

/// UAPI `Mysql::list_databases`.
pub(crate) fn list_databases(account: &mut Account, _call: &CpanelCall) -> UapiResult {
    let rows = account
        .databases
        .iter()
        .map(|(name, db)| json!({"database": name, "disk_usage": 0, "users": db.users}))
        .collect();
    Ok(Value::Array(rows))
}

/// UAPI `Mysql::create_database`: `name`.
pub(crate) fn create_database(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let name = required(&call.params, "name")?;
    check_name(account, name, "database", MAX_DATABASE_NAME)?;
    if account.databases.contains_key(name) {
        return Err(format!("The database \"{name}\" already exists."));
    }
    account.databases.insert(name.to_owned(), Database::default());
    Ok(Value::Null)
}

/// UAPI `Mysql::delete_database`: `name`.
pub(crate) fn delete_database(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let name = required(&call.params, "name")?;
    account
        .databases
        .remove(name)
        .map(|_| Value::Null)
        .ok_or_else(|| no_database(name))
}

/// UAPI `Mysql::list_users`.
pub(crate) fn list_users(account: &mut Account, _call: &CpanelCall) -> UapiResult {
    let prefix = prefix(account);
    let rows = account
        .db_users
        .keys()
        .map(|user| {
            let databases: Vec<&String> = account
                .databases
                .iter()
                .filter(|(_, db)| db.users.contains(user))
                .map(|(name, _)| name)
                .collect();
            json!({
                "user": user,
                "full_user": user,
                "shortuser": user.strip_prefix(&prefix).unwrap_or(user),
                "databases": databases,
            })
        })
        .collect();
    Ok(Value::Array(rows))
}

/// UAPI `Mysql::create_user`: `name`, `password`.
pub(crate) fn create_user(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let name = required(&call.params, "name")?;
    check_name(account, name, "database user", MAX_USER_NAME)?;
    required(&call.params, "password")?;
    if account.db_users.contains_key(name) {
        return Err(format!("The database user \"{name}\" already exists."));
    }
    account.db_users.insert(name.to_owned(), ());
    Ok(Value::Null)
}

/// UAPI `Mysql::delete_user`: `name`; also drops the user's privileges.
pub(crate) fn delete_user(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let name = required(&call.params, "name")?;
    if account.db_users.remove(name).is_none() {
        return Err(no_user(name));
    }
    for db in account.databases.values_mut() {
        db.users.retain(|u| u != name);
    }
    Ok(Value::Null)
}

/// UAPI `Mysql::set_privileges_on_database`: `user`, `database`, `privileges`.
pub(crate) fn set_privileges_on_database(account: &mut Account, call: &CpanelCall) -> UapiResult {
    let user = required(&call.params, "user")?;
    let database = required(&call.params, "database")?;
    required(&call.params, "privileges")?;
    if !account.db_users.contains_key(user) {
        return Err(no_user(user));
    }
    let db = account
        .databases
        .get_mut(database)
        .ok_or_else(|| no_database(database))?;
    if !db.users.iter().any(|u| u == user) {
        db.users.push(user.to_owned());
    }
    Ok(Value::Null)
}

fn prefix(account: &Account) -> String {
    format!("{}_", account.user)
}

/// The prefix rule, then `[A-Za-z0-9_-]` and the length limit.
fn check_name(account: &Account, name: &str, what: &str, max: usize) -> Result<(), String> {
    let prefix = prefix(account);
    let Some(rest) = name.strip_prefix(&prefix) else {
        return Err(format!(
            "The {what} name \"{name}\" must begin with the prefix \"{prefix}\"."
        ));
    };
    if rest.is_empty()
        || !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "The {what} name \"{name}\" is not valid: use letters, digits, \"_\" and \"-\" after the prefix."
        ));
    }
    if name.len() > max {
        return Err(format!("The {what} name \"{name}\" is longer than {max} characters."));
    }
    Ok(())
}

fn no_database(name: &str) -> String {
    format!("The database \"{name}\" does not exist.")
}

fn no_user(name: &str) -> String {
    format!("The database user \"{name}\" does not exist.")
}
