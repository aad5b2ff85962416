//! What pcscd and the YubiKeys behind it say, for `warrantd setup` and `warrantd doctor`:
//! every PIV card's serial and firmware, whether the firmware has the YSA-2024-03 ECDSA side
//! channel, whether the management key is still the factory default, and the PIN tries left.
//! No PIN is tried; the default management key is tried (it has no retry counter).

use yubikey::piv::{metadata, ManagementSlotId, SlotId};
use yubikey::reader::Context;
use yubikey::{MgmKey, YubiKey};

use crate::Error;

/// Firmware from which YSA-2024-03 is fixed.
pub const YSA_2024_03_FIXED: (u8, u8, u8) = (5, 7, 0);

/// One PIV card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFacts {
    /// The PC/SC reader it is in.
    pub reader: String,
    /// Its serial.
    pub serial: u32,
    /// Its firmware (major, minor, patch).
    pub firmware: (u8, u8, u8),
    /// The factory management key still works: `warrant yubikey setup` has not been run.
    pub default_management_key: bool,
    /// PIN tries left (`None`: the card did not say: without PIN metadata, firmware before
    /// 5.3, a card whose PIN is verified in another session answers like a blocked one).
    pub pin_tries: Option<u8>,
}

impl CardFacts {
    /// Its ECDSA keys are exposed to YSA-2024-03 (firmware below 5.7.0).
    pub fn ysa_2024_03(&self) -> bool {
        self.firmware < YSA_2024_03_FIXED
    }
}

/// Every PIV card pcscd has; `Err(PcscUnavailable)` when pcscd cannot be reached. Readers
/// whose card does not answer as a PIV YubiKey are left out.
pub fn probe() -> Result<Vec<CardFacts>, Error> {
    let mut context = Context::open().map_err(|e| Error::PcscUnavailable(e.to_string()))?;
    let readers = context.iter().map_err(|e| Error::PcscUnavailable(e.to_string()))?;
    let mut cards = Vec::new();
    for reader in readers {
        let Ok(mut card) = reader.open() else { continue };
        cards.push(facts(&reader.name(), &mut card));
    }
    Ok(cards)
}

fn facts(reader: &str, card: &mut YubiKey) -> CardFacts {
    let version = card.version();
    // The PIN's metadata says (5.3+); else VERIFY without a PIN, whose "verified" answer the
    // yubikey crate reports as 0 tries, the same as a blocked PIN: that is left unknown.
    let pin_tries = match metadata(card, SlotId::Management(ManagementSlotId::Pin)) {
        Ok(m) => m.retries.map(|r| r.remaining_count),
        Err(_) => card.get_pin_retries().ok().filter(|&tries| tries > 0),
    };
    // The management key's metadata says whether it is the default (5.3+); else the default
    // key is tried (management keys have no retry counter).
    let default_management_key = match metadata(card, SlotId::Management(ManagementSlotId::Management)) {
        Ok(m) if m.default.is_some() => m.default == Some(true),
        _ => card.authenticate(MgmKey::default()).is_ok(),
    };
    CardFacts {
        reader: reader.to_owned(),
        serial: card.serial().0,
        firmware: (version.major, version.minor, version.patch),
        default_management_key,
        pin_tries,
    }
}
