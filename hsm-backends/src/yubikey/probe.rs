//! What pcscd and the YubiKeys behind it say, for `warrantd setup` and `warrantd doctor`:
//! every PIV card's serial and firmware, whether the firmware has the YSA-2024-03 ECDSA side
//! channel, whether the management key is still the factory default, and the PIN tries left.
//!
//! The probe leaves every card as it found it, since a warrantd may hold a PIN-verified session
//! on it: a YubiKey forgets a verified PIN when it is reset, and when its PIV application is
//! selected again (the yubikey crate's own `get_pin_retries` re-selects "to unverify"). So it
//! speaks PC/SC itself rather than through the yubikey crate, whose handles select the
//! application on opening and reset the card when dropped: every handle here is released with
//! `SCARD_LEAVE_CARD`; the application is selected only when GET VERSION shows another one is
//! (its session is gone then anyway); and neither a PIN nor a management key is tried. The
//! card's metadata (firmware 5.3 and later) says whether the management key is the default and
//! how many PIN tries are left; without it the first is left unknown, and the second read from
//! VERIFY without a PIN, which changes nothing.

use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode, Transaction};

use crate::Error;

/// Firmware from which YSA-2024-03 is fixed.
pub const YSA_2024_03_FIXED: (u8, u8, u8) = (5, 7, 0);

/// SELECT the PIV application by its RID (A0 00 00 03 08), as hosts do.
const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
/// YubiKey GET VERSION: three bytes, major, minor, patch (PIV only).
const GET_VERSION: [u8; 5] = [0x00, 0xFD, 0x00, 0x00, 0x00];
/// YubiKey GET SERIAL: four bytes, big-endian (PIV, firmware 5 and later).
const GET_SERIAL: [u8; 5] = [0x00, 0xF8, 0x00, 0x00, 0x00];
/// VERIFY the PIV PIN without a PIN: the tries left (63Cx), or "verified" (9000).
const VERIFY_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x80];
/// The PIN's and the management key's references, for GET METADATA.
const PIN: u8 = 0x80;
const MANAGEMENT_KEY: u8 = 0x9B;
/// Metadata's tags: the value is the factory default (1 byte), and the tries (total, left).
const TAG_DEFAULT: u8 = 0x05;
const TAG_RETRIES: u8 = 0x06;

const SW_OK: u16 = 0x9000;
/// 63Cx: a PIN was not verified, x tries left.
const SW_TRIES_LEFT: u16 = 0x63C0;
/// 6983: the PIN is blocked.
const SW_BLOCKED: u16 = 0x6983;
/// Most parts (61xx, GET RESPONSE) and bytes one answer may come in: far beyond any of these.
const MAX_PARTS: usize = 16;
const MAX_ANSWER: usize = 4096;

/// One PIV card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFacts {
    /// The PC/SC reader it is in.
    pub reader: String,
    /// Its serial (`None`: firmware before 5 tells it only outside the PIV application, which
    /// the probe does not select).
    pub serial: Option<u32>,
    /// Its firmware (major, minor, patch).
    pub firmware: (u8, u8, u8),
    /// The factory management key is still set: `warrant yubikey setup` has not been run.
    /// `None`: the card did not say (no metadata before firmware 5.3; the key is not tried).
    pub default_management_key: Option<bool>,
    /// PIN tries left (`None`: the card did not say: without PIN metadata, a card whose PIN is
    /// verified in a session answers VERIFY with "verified", not a count).
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
    let context = Context::establish(Scope::User).map_err(|e| Error::PcscUnavailable(e.to_string()))?;
    let readers = match context.list_readers_owned() {
        Ok(readers) => readers,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(Error::PcscUnavailable(e.to_string())),
    };
    let mut cards = Vec::new();
    for reader in readers {
        // No card in it, or one another program holds exclusively: nothing to say about it.
        let Ok(mut card) = context.connect(&reader, ShareMode::Shared, Protocols::T1) else { continue };
        let facts = card.transaction().ok().and_then(|tx| {
            let facts = facts(&tx, &reader.to_string_lossy());
            // Ending it is what dropping it does too; said here, where it matters.
            let _ = tx.end(Disposition::LeaveCard);
            facts
        });
        release(card);
        cards.extend(facts);
    }
    Ok(cards)
}

/// Disconnects without resetting the card (pcsc's `Card` resets it when dropped).
fn release(card: Card) {
    if let Err((card, _)) = card.disconnect(Disposition::LeaveCard) {
        // The handle is unusable; dropping it would still ask for a reset.
        std::mem::forget(card);
    }
}

fn facts(tx: &Transaction<'_>, reader: &str) -> Option<CardFacts> {
    // The PIV application is selected (by warrantd's session, say) when GET VERSION answers;
    // selecting it again would log that session out.
    let firmware = match version(tx) {
        Some(version) => version,
        None => {
            let selected = transmit(tx, &SELECT_PIV)?;
            if selected.sw != SW_OK {
                return None;
            }
            version(tx)?
        }
    };
    let serial = transmit(tx, &GET_SERIAL)
        .filter(|r| r.sw == SW_OK)
        .and_then(|r| <[u8; 4]>::try_from(r.data.as_slice()).ok())
        .map(u32::from_be_bytes);
    let pin = metadata(tx, PIN);
    let pin_tries = match pin.as_deref().and_then(|m| tlv(m, TAG_RETRIES)) {
        Some([_total, left]) => Some(*left),
        _ => pin_tries_by_verify(tx),
    };
    let default_management_key = metadata(tx, MANAGEMENT_KEY)
        .as_deref()
        .and_then(|m| tlv(m, TAG_DEFAULT))
        .and_then(|value| value.first().map(|&b| b == 1));
    Some(CardFacts { reader: reader.to_owned(), serial, firmware, default_management_key, pin_tries })
}

/// The firmware GET VERSION reports, when the PIV application answers it.
fn version(tx: &Transaction<'_>) -> Option<(u8, u8, u8)> {
    match transmit(tx, &GET_VERSION)? {
        Response { sw: SW_OK, data } => match data.as_slice() {
            [major, minor, patch] => Some((*major, *minor, *patch)),
            _ => None,
        },
        _ => None,
    }
}

/// GET METADATA of `reference` (firmware 5.3+): its TLVs; `None` when the card has none.
fn metadata(tx: &Transaction<'_>, reference: u8) -> Option<Vec<u8>> {
    transmit(tx, &[0x00, 0xF7, 0x00, reference, 0x00]).filter(|r| r.sw == SW_OK).map(|r| r.data)
}

/// The tries left as VERIFY without a PIN says; `None` when the PIN is verified (the card
/// then gives no count).
fn pin_tries_by_verify(tx: &Transaction<'_>) -> Option<u8> {
    match transmit(tx, &VERIFY_STATUS)?.sw {
        SW_BLOCKED => Some(0),
        sw if sw & 0xFFF0 == SW_TRIES_LEFT => u8::try_from(sw & 0x0F).ok(),
        _ => None,
    }
}

/// A response APDU: its data and status word.
#[derive(Debug)]
struct Response {
    data: Vec<u8>,
    sw: u16,
}

/// Sends `apdu`; an answer in parts (61xx) is gathered with GET RESPONSE. `None`: PC/SC
/// failed, or the answer is malformed or too long.
fn transmit(tx: &Transaction<'_>, apdu: &[u8]) -> Option<Response> {
    let mut data = Vec::new();
    let mut command = apdu.to_vec();
    for _ in 0..MAX_PARTS {
        let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
        let answer = tx.transmit(&command, &mut buffer).ok()?;
        let (body, sw) = split_status(answer)?;
        data.extend_from_slice(body);
        if data.len() > MAX_ANSWER {
            return None;
        }
        if sw >> 8 != 0x61 {
            return Some(Response { data, sw });
        }
        command = vec![0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8];
    }
    None
}

/// A response's data and its status word (its last two bytes).
fn split_status(answer: &[u8]) -> Option<(&[u8], u16)> {
    let at = answer.len().checked_sub(2)?;
    let (body, sw) = answer.split_at(at);
    Some((body, u16::from_be_bytes(<[u8; 2]>::try_from(sw).ok()?)))
}

/// The value of the first `tag` in a flat BER-TLV list (one-byte tags, as metadata has);
/// `None` when absent or when the list is malformed before it.
fn tlv(mut list: &[u8], tag: u8) -> Option<&[u8]> {
    while let [found, rest @ ..] = list {
        let (length, rest) = match rest {
            [len @ 0..=0x7F, rest @ ..] => (usize::from(*len), rest),
            [0x81, len, rest @ ..] => (usize::from(*len), rest),
            [0x82, high, low, rest @ ..] => (usize::from(u16::from_be_bytes([*high, *low])), rest),
            _ => return None,
        };
        let value = rest.get(..length)?;
        if *found == tag {
            return Some(value);
        }
        list = rest.get(length..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values_are_found_by_tag_and_malformed_lists_give_none() {
        // A YubiKey's PIN metadata: algorithm, default (no), retries (3 of 3).
        let pin = [0x01, 0x01, 0xFF, 0x05, 0x01, 0x00, 0x06, 0x02, 0x03, 0x03];
        assert_eq!(tlv(&pin, TAG_RETRIES), Some(&[3u8, 3][..]));
        assert_eq!(tlv(&pin, TAG_DEFAULT), Some(&[0u8][..]));
        assert_eq!(tlv(&pin, 0x04), None);
        // Long-form lengths.
        let long = [0x04, 0x81, 0x02, 0xAA, 0xBB, 0x05, 0x82, 0x00, 0x01, 0x01];
        assert_eq!(tlv(&long, 0x04), Some(&[0xAA, 0xBB][..]));
        assert_eq!(tlv(&long, TAG_DEFAULT), Some(&[1u8][..]));
        // A length beyond the data, a length form not used here, an empty list.
        assert_eq!(tlv(&[0x05, 0x02, 0x01], TAG_DEFAULT), None);
        assert_eq!(tlv(&[0x04, 0x83, 0, 0, 1, 0, 0x05, 0x01, 0x01], TAG_DEFAULT), None);
        assert_eq!(tlv(&[], TAG_DEFAULT), None);
    }

    #[test]
    fn a_status_word_is_split_from_the_data() {
        assert_eq!(split_status(&[5, 7, 1, 0x90, 0x00]), Some((&[5u8, 7, 1][..], 0x9000)));
        assert_eq!(split_status(&[0x63, 0xC2]), Some((&[][..], 0x63C2)));
        assert_eq!(split_status(&[0x90]), None);
        assert_eq!(split_status(&[]), None);
    }
}
