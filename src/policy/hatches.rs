//! Escape hatches: functions that amount to full control of the cPanel account
//! (`cpanel-wire.md` §8).
//!
//! Owns: the table of escape-hatch function patterns for UAPI and API 2, and the one predicate
//! [`is_escape_hatch`].
//! Never: grants or denies anything by itself; the decision uses it to require an *exact* grant
//! (`calls = ["Tokens::create_full_access"]`, never `Tokens::*` or `*::*`).
//! Invariants: matching is case-sensitive, like cPanel's own module and function names; the
//! table only ever grows (an entry removed would silently widen every wildcard grant).

use crate::call::Api;

/// One entry: module (exact) and function (exact, or a prefix when it ends in `*`).
struct Hatch {
    api: Api,
    module: &'static str,
    function: &'static str,
}

const fn uapi(module: &'static str, function: &'static str) -> Hatch {
    Hatch {
        api: Api::Uapi,
        module,
        function,
    }
}

const fn api2(module: &'static str, function: &'static str) -> Hatch {
    Hatch {
        api: Api::Api2,
        module,
        function,
    }
}

/// `cpanel-wire.md` §8, plus the forwarder and default-address functions that reach the same
/// mail takeover and pipe-to-program execution as `Email::add_forwarder` by another door.
const HATCHES: &[Hatch] = &[
    // Credentials and sessions: mint tokens, log in, manage users and 2FA.
    uapi("Tokens", "*"),
    uapi("Session", "*"),
    uapi("UserManager", "*"),
    uapi("Team", "*"),
    uapi("TwoFactorAuth", "*"),
    // Batch is granted by name only; its inner commands are still checked one by one.
    uapi("Batch", "*"),
    // Whole-account data exfiltration.
    uapi("Backup", "fullbackup_*"),
    uapi("Mysql", "dump_database_schema"),
    // Arbitrary file writes (code execution through .htaccess, .bashrc, PHP, cron files).
    uapi("Fileman", "save_file_content"),
    uapi("Fileman", "upload_files"),
    uapi("Ftp", "add_ftp"),
    uapi("Ftp", "passwd"),
    uapi("WebDisk", "*"),
    // Mail takeover (password resets) and pipe forwarders (program execution).
    uapi("Email", "add_forwarder"),
    uapi("Email", "add_domain_forwarder"),
    uapi("Email", "set_default_address"),
    // API 2.
    api2("Cron", "*"),
    api2("SSH", "*"),
    api2("Passwd", "*"),
    api2("Fileman", "savefile"),
    api2("Fileman", "uploadfiles"),
    api2("Ftp", "addftp"),
    api2("Ftp", "passwd"),
    api2("Email", "addforward"),
    api2("Email", "adddomainforward"),
    api2("Email", "setdefaultaddress"),
    api2("Backups", "*"),
];

/// True when `api` `module::function` is an escape hatch: it may only be allowed by a rule that
/// lists it by its exact name.
pub fn is_escape_hatch(api: Api, module: &str, function: &str) -> bool {
    HATCHES.iter().any(|h| {
        h.api == api
            && h.module == module
            && match h.function.strip_suffix('*') {
                Some(prefix) => function.starts_with(prefix),
                None => h.function == function,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_functions_are_escape_hatches() {
        for (module, function) in [
            ("Tokens", "create_full_access"),
            ("Session", "create_temp_user"),
            ("UserManager", "create_user"),
            ("Team", "add_team_user"),
            ("Batch", "strict"),
            ("Backup", "fullbackup_to_homedir"),
            ("Fileman", "save_file_content"),
            ("Fileman", "upload_files"),
            ("Ftp", "add_ftp"),
            ("Ftp", "passwd"),
            ("WebDisk", "set_password"),
            ("Email", "add_forwarder"),
            ("Mysql", "dump_database_schema"),
            ("TwoFactorAuth", "remove_user_configuration"),
        ] {
            assert!(is_escape_hatch(Api::Uapi, module, function), "{module}::{function}");
        }
        for (module, function) in [
            ("Cron", "add_line"),
            ("SSH", "importkey"),
            ("Passwd", "change_password"),
            ("Fileman", "savefile"),
            ("Fileman", "uploadfiles"),
            ("Ftp", "addftp"),
            ("Ftp", "passwd"),
            ("Email", "addforward"),
            ("Backups", "listfullbackups"),
        ] {
            assert!(
                is_escape_hatch(Api::Api2, module, function),
                "api2:{module}::{function}"
            );
        }
    }

    #[test]
    fn ordinary_functions_and_other_namespaces_are_not_escape_hatches() {
        assert!(!is_escape_hatch(Api::Uapi, "Email", "list_pops"));
        assert!(!is_escape_hatch(Api::Uapi, "Backup", "list_backups"));
        assert!(!is_escape_hatch(Api::Uapi, "Fileman", "list_files"));
        // The namespaces are separate: API 2 Cron is a hatch, a UAPI module named Cron is not
        // listed; UAPI Tokens is, an API 2 Tokens module is not.
        assert!(!is_escape_hatch(Api::Uapi, "Cron", "add_line"));
        assert!(!is_escape_hatch(Api::Api2, "Tokens", "create_full_access"));
        // Case-sensitive, as cPanel is.
        assert!(!is_escape_hatch(Api::Uapi, "tokens", "create_full_access"));
    }
}
