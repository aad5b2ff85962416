//! An enrolled key's grant: whether it is still valid, and whether the newest status list of
//! its authority that the user gives revokes it. The files are decoded, not verified: the
//! doctor holds no trust file, and only reports what they say.

use std::path::{Path, PathBuf};

use warrant_envelope::issue::{GrantClaims, StatusListClaims};
use warrant_envelope::{inspect, thumbprint, Claims};

use super::report::Check;

/// A grant expiring sooner than this warns.
const EXPIRY_WARNING_SECONDS: u64 = 24 * 3600;

/// The checks of each grant in `grants`, against the lists in `lists`; `keys` are the
/// daemon's keys (name, kid), when it answered.
pub fn checks(grants: &[PathBuf], lists: &[PathBuf], keys: &[(String, String)], now: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut decoded_lists = Vec::new();
    for path in lists {
        match read(path).and_then(|bytes| match inspect(&bytes).map_err(|e| e.to_string())?.claims {
            Claims::StatusList(claims) => Ok(claims),
            _ => Err("not a status list".into()),
        }) {
            Ok(list) => decoded_lists.push(list),
            Err(e) => checks.push(Check::fail(
                "status-list",
                format!("{}: {e}", path.display()),
                "give the status list file the authority published (warrant authority status-list --out FILE)",
            )),
        }
    }
    for path in grants {
        let name = format!("grant {}", path.display());
        let grant =
            match read(path).and_then(|bytes| match inspect(&bytes).map_err(|e| e.to_string())?.claims {
                Claims::Grant(claims) => Ok(claims),
                _ => Err("not a grant".into()),
            }) {
                Ok(grant) => grant,
                Err(e) => {
                    checks.push(Check::fail(name, e, "give the grant file the authority issued"));
                    continue;
                }
            };
        let kid = hex::encode(thumbprint(&grant.device_key));
        let key = keys.iter().find(|(_, k)| *k == kid).map(|(n, _)| n.as_str());
        checks.push(expiry(&name, &grant, key, now));
        checks.push(revocation(&name, &grant, &decoded_lists));
    }
    checks
}

fn expiry(name: &str, grant: &GrantClaims, key: Option<&str>, now: u64) -> Check {
    let whose = format!(
        "{} from {} for {}",
        key.map(|k| format!("key {k}")).unwrap_or_else(|| "a key this warrantd does not list".into()),
        grant.issuer,
        grant.principal
    );
    let renew = "enroll again and ask the authority for a new grant (warrant enroll, then warrant authority grant on the authority)";
    if grant.expires_at <= now {
        Check::fail(name, format!("{whose}: expired {} s ago", now - grant.expires_at), renew)
    } else if grant.expires_at - now < EXPIRY_WARNING_SECONDS {
        Check::warn(name, format!("{whose}: expires in {} s", grant.expires_at - now), renew)
    } else {
        Check::ok(name, format!("{whose}: valid for {} more hours", (grant.expires_at - now) / 3600))
    }
}

fn revocation(name: &str, grant: &GrantClaims, lists: &[StatusListClaims]) -> Check {
    let name = format!("{name}.status");
    let newest = lists
        .iter()
        .filter(|l| l.issuer == grant.issuer && l.uri == grant.status.uri)
        .max_by_key(|l| l.sequence);
    let Some(list) = newest else {
        return Check::warn(
            name,
            format!("no status list of {} ({}) given", grant.issuer, grant.status.uri),
            "give the authority's newest list with --status-list FILE",
        );
    };
    match list.bits.is_revoked(grant.status.index) {
        Ok(true) => Check::fail(
            name,
            format!("revoked in status list {} (sequence {})", list.uri, list.sequence),
            "verifiers refuse its warrants: ask the authority for a new grant",
        ),
        Ok(false) => Check::ok(
            name,
            format!("not revoked in status list sequence {} (unverified copy)", list.sequence),
        ),
        Err(e) => {
            Check::fail(name, format!("status list sequence {}: {e}", list.sequence), "ask the authority")
        }
    }
}

/// Most bytes read from a grant or list file.
const MAX_FILE: u64 = 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    Ok(bytes)
}
