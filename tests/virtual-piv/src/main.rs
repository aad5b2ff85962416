//! `virtual-piv DIR [--port P] [--serial N] [--version X.Y.Z] [--f9-from-unknown-ca]`: a
//! virtual YubiKey-like PIV card. It connects to vsmartcard's vpcd (inside pcscd) and serves
//! piv-authenticator 0.7 (Nitrokey, on trussed's virt platform) with the fixes hosts need and
//! what a YubiKey has beyond the applet: GET VERSION, GET SERIAL, GET METADATA, ATTEST and the
//! f9 certificate, from a test CA made in DIR (`DIR/ca.pem`, for verifiers in tests). The
//! card's state (keys, PINs, slots) lives in DIR, so a killed and restarted card is the same
//! card re-inserted. Like a YubiKey, it forgets a verified PIN on a reset, a power-off and a
//! SELECT of the PIV application (each logged on stderr, which tests read to see that a
//! program left the card alone); GET METADATA answers for the PIN and the management key from
//! firmware 5.3. Development only: its keys are as safe as a file.

mod attestation;
mod card;
mod dispatch;
mod vpcd;

use std::collections::BTreeMap;
use std::path::PathBuf;

struct Args {
    dir: PathBuf,
    port: u16,
    serial: u32,
    version: [u8; 3],
    f9_from_unknown_ca: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        dir: PathBuf::new(),
        port: 35963,
        serial: 12_345_678,
        version: [5, 7, 1],
        f9_from_unknown_ca: false,
    };
    let mut dir = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => parsed.port = value("--port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--serial" => parsed.serial = value("--serial")?.parse().map_err(|e| format!("--serial: {e}"))?,
            "--version" => {
                let v = value("--version")?;
                let parts: Vec<u8> = v.split('.').filter_map(|p| p.parse().ok()).collect();
                parsed.version = parts.try_into().map_err(|_| format!("--version {v:?} is not X.Y.Z"))?;
            }
            "--f9-from-unknown-ca" => parsed.f9_from_unknown_ca = true,
            other if dir.is_none() && !other.starts_with('-') => dir = Some(PathBuf::from(other)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    parsed.dir =
        dir.ok_or("usage: virtual-piv DIR [--port P] [--serial N] [--version X.Y.Z] [--f9-from-unknown-ca]")?;
    Ok(parsed)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("virtual-piv: {e}");
        std::process::exit(2)
    });
    if let Err(e) = run(&args) {
        eprintln!("virtual-piv: {e}");
        std::process::exit(1)
    }
}

fn run(args: &Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.dir).map_err(|e| e.to_string())?;
    let mut attestor = attestation::Attestor::open(&args.dir, 0x01)?;
    if args.f9_from_unknown_ca {
        attestor.overwrite_f9()?;
    }
    let slots_file = args.dir.join("slots.json");
    // Present once `warrant yubikey setup` (or anyone) has replaced the factory management key.
    let key_changed_file = args.dir.join("management-key-changed");
    let slots: BTreeMap<u8, card::SlotKey> =
        std::fs::read(&slots_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut link = vpcd::Link::connect(args.port).map_err(|e| {
        format!("vpcd is not listening on port {} (pcscd with vsmartcard-vpcd): {e}", args.port)
    })?;
    use trussed::virt::{self, StorageConfig, StoreConfig};
    let store = StoreConfig {
        internal: StorageConfig::filesystem(args.dir.join("internal.littlefs")),
        external: StorageConfig::filesystem(args.dir.join("external.littlefs")),
        volatile: StorageConfig::ram(),
    };
    virt::with_platform(store, |platform| {
        platform.run_client_with_backends(
            "piv",
            dispatch::Dispatch::default(),
            &dispatch::BACKENDS,
            |client| {
                let app =
                    piv_authenticator::Authenticator::new(client, piv_authenticator::Options::default());
                let default_key = !key_changed_file.exists();
                let mut card = card::Card::new(app, attestor, args.version, args.serial, slots, default_key);
                eprintln!("virtual-piv: serial {} inserted (vpcd port {})", args.serial, args.port);
                loop {
                    match link.next() {
                        Ok(vpcd::Event::Reset) => card.reset("reset"),
                        Ok(vpcd::Event::PowerOff) => card.reset("power off"),
                        Ok(vpcd::Event::Apdu(apdu)) => {
                            let response = card.handle(&apdu);
                            if card.changed {
                                card.changed = false;
                                let json = serde_json::to_vec(&card.slots).map_err(|e| e.to_string())?;
                                std::fs::write(&slots_file, json).map_err(|e| e.to_string())?;
                                if !card.management_key_default {
                                    std::fs::write(&key_changed_file, b"").map_err(|e| e.to_string())?;
                                }
                            }
                            link.send(&response).map_err(|e| format!("vpcd: {e}"))?;
                        }
                        Err(e) => return Err(format!("vpcd closed the connection: {e}")),
                    }
                }
            },
        )
    })
}
