//! Who the system daemon runs as: systemd/warrantd.service sets `User=warrant`,
//! `Group=warrant` and `SupplementaryGroups=tss`, systemd/sysusers.d/warrant.conf makes them,
//! and warrantd.socket gives the socket group warrant. Setup (the group that reads agent.toml,
//! the passphrase file's owner), the configuration (the socket's default group) and doctor (the
//! identity its daemon-side checks run as, the socket's expected owner) name them from here
//! only; a test keeps the unit files in step.

/// `User=`.
pub const USER: &str = "warrant";
/// `Group=`, and warrantd.socket's `SocketGroup=`: its members may connect.
pub const GROUP: &str = "warrant";
/// `SupplementaryGroups=`: tss owns /dev/tpmrm0.
pub const SUPPLEMENTARY_GROUPS: &[&str] = &["tss"];

#[cfg(test)]
mod tests {
    use super::*;

    fn setting<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
        let prefix = format!("{key}=");
        unit.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).flat_map(str::split_whitespace).collect()
    }

    #[test]
    fn the_unit_files_name_the_same_user_and_groups() {
        let service = include_str!("../../systemd/warrantd.service");
        assert_eq!(setting(service, "User"), [USER]);
        assert_eq!(setting(service, "Group"), [GROUP]);
        assert_eq!(setting(service, "SupplementaryGroups"), SUPPLEMENTARY_GROUPS);
        let socket = include_str!("../../systemd/warrantd.socket");
        assert_eq!(setting(socket, "SocketGroup"), [GROUP]);
        let sysusers: Vec<Vec<&str>> = include_str!("../../systemd/sysusers.d/warrant.conf")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().take(3).collect())
            .collect();
        for made in [vec!["u", USER], vec!["g", GROUP]] {
            assert!(sysusers.iter().any(|l| l[..2] == made[..]), "sysusers.d makes {made:?}");
        }
        for group in SUPPLEMENTARY_GROUPS {
            assert!(sysusers.iter().any(|l| l[..2] == ["g", group]), "sysusers.d makes group {group}");
            assert!(sysusers.contains(&vec!["m", USER, group]), "sysusers.d puts {USER} in {group}");
        }
    }
}
