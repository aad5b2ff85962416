//! The YubiKey's checks, through the probe that leaves the card as it found it (a running
//! warrantd's PIN-verified session survives them): pcscd, the card's serial and firmware,
//! YSA-2024-03, the factory management key, the PIN tries left.

use warrant_hsm_backends::yubikey::YubikeySettings;

use super::report::Check;

/// The YubiKey's checks: pcscd, the card (serial, firmware), YSA-2024-03, the factory
/// management key and the PIN tries left.
#[cfg(feature = "yubikey")]
pub fn checks(settings: &YubikeySettings) -> Vec<Check> {
    use warrant_hsm_backends::yubikey::{probe, CardFacts};
    let serial = |c: &CardFacts| c.serial.map_or_else(|| "serial unknown".to_owned(), |s| s.to_string());
    let cards = match probe() {
        Ok(cards) => cards,
        Err(e) => {
            return vec![Check::fail(
                "yubikey.pcscd",
                e.to_string(),
                "start pcscd (sudo systemctl enable --now pcscd.socket); system mode also needs the polkit rule 50-warrant-pcscd.rules",
            )]
        }
    };
    let mut checks = vec![Check::ok("yubikey.pcscd", "pcscd answers")];
    let card = match (settings.serial_number, cards.as_slice()) {
        (_, []) => {
            checks.push(Check::fail(
                "yubikey.card",
                "no YubiKey is present",
                "insert it; the udev rules 70-warrant.rules give the seat's user access",
            ));
            return checks;
        }
        (Some(wanted), cards) => match cards.iter().find(|c| c.serial == Some(wanted)) {
            Some(card) => card,
            None => {
                let present: Vec<String> = cards.iter().map(serial).collect();
                checks.push(Check::fail(
                    "yubikey.card",
                    format!("the YubiKey {wanted} is not present (present: {})", present.join(", ")),
                    "insert it, or set [keystore] serial_number to a card that is",
                ));
                return checks;
            }
        },
        (None, [card]) => card,
        (None, cards) => {
            let present: Vec<String> = cards.iter().map(serial).collect();
            checks.push(Check::fail(
                "yubikey.card",
                format!("several YubiKeys are present ({})", present.join(", ")),
                "set [keystore] serial_number",
            ));
            return checks;
        }
    };
    let (major, minor, patch) = card.firmware;
    checks.push(Check::ok(
        "yubikey.card",
        format!("serial {}, firmware {major}.{minor}.{patch}, in reader {:?}", serial(card), card.reader),
    ));
    checks.push(if card.ysa_2024_03() {
        Check::warn(
            "yubikey.ysa-2024-03",
            format!("firmware {major}.{minor}.{patch} is below 5.7.0: its ECDSA keys are exposed to YSA-2024-03, and authorities refuse them unless allow_ysa_2024_03"),
            "use a YubiKey with firmware 5.7.0 or later",
        )
    } else {
        Check::ok("yubikey.ysa-2024-03", "firmware 5.7.0 or later: not affected")
    });
    let setup = "stop warrantd and run `warrant yubikey setup --new-pin-file FILE --new-puk-file FILE`";
    checks.push(match card.default_management_key {
        Some(true) => Check::fail(
            "yubikey.management-key",
            "the factory default management key is still set: anyone with the card can replace its keys, and warrantd cannot create keys",
            setup,
        ),
        Some(false) => Check::ok("yubikey.management-key", "not the factory default"),
        None => Check::warn(
            "yubikey.management-key",
            "the card does not say whether the factory default management key is set (no metadata before firmware 5.3), and doctor does not try it (a successful try would leave the card authenticated for every program)",
            format!("unless `warrant yubikey setup` was run on this card: {setup}"),
        ),
    });
    checks.push(match card.pin_tries {
        Some(0) => Check::fail(
            "yubikey.pin",
            "the PIN is blocked",
            "unblock it with the PUK (ykman piv access unblock-pin)",
        ),
        Some(tries) if tries < 3 => Check::warn(
            "yubikey.pin",
            format!("{tries} PIN tries left"),
            "check the configured PIN source before the PIN blocks",
        ),
        Some(tries) => Check::ok("yubikey.pin", format!("{tries} PIN tries left")),
        None => {
            Check::warn(
                "yubikey.pin",
                "the card did not say how many PIN tries are left (without PIN metadata, a card whose PIN a session has verified gives no count)",
                "none while warrantd signs; `ykman piv info` tells, but logs warrantd's session out",
            )
        }
    });
    checks
}

#[cfg(not(feature = "yubikey"))]
pub fn checks(_: &YubikeySettings) -> Vec<Check> {
    vec![Check::fail(
        "yubikey",
        "this warrantd has no YubiKey backend",
        "install a build with the `yubikey` feature (the Debian package)",
    )]
}
