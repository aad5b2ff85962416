//! The card: piv-authenticator behind the fixes hosts need, plus what a YubiKey has and the
//! applet lacks (version, serial, attestation).

use std::collections::BTreeMap;

use apdu_app::App;
use iso7816::command::{Command, CommandView};
use iso7816::Interface;

use crate::attestation::Attestor;

/// Full PIV AID; hosts select the 5-byte RID prefix.
const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
const PIV_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];
const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_NOT_FOUND: [u8; 2] = [0x6A, 0x82];
const SW_WRONG_DATA: [u8; 2] = [0x6A, 0x80];
/// GET METADATA's references of the PIN and the management key, and its first firmware.
const PIN_REFERENCE: u8 = 0x80;
const MANAGEMENT_KEY: u8 = 0x9B;
const METADATA_FROM: [u8; 3] = [5, 3, 0];
/// The applet's PIN tries.
const PIN_TRIES: u8 = 3;

/// A generated key as the card remembers it for attestation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SlotKey {
    pub point: String,
    pub pin_policy: u8,
    pub touch_policy: u8,
}

pub struct Card<A: App> {
    app: A,
    pub attestor: Attestor,
    pub version: [u8; 3],
    pub serial: u32,
    /// Keys by slot, persisted by the caller.
    pub slots: BTreeMap<u8, SlotKey>,
    chained: Option<Vec<u8>>,
    pending: Vec<u8>,
    pub changed: bool,
    /// The factory management key is still set (persisted by the caller, with `slots`).
    pub management_key_default: bool,
}

impl<A: App> Card<A> {
    pub fn new(
        app: A,
        attestor: Attestor,
        version: [u8; 3],
        serial: u32,
        slots: BTreeMap<u8, SlotKey>,
        management_key_default: bool,
    ) -> Self {
        Self {
            app,
            attestor,
            version,
            serial,
            slots,
            chained: None,
            pending: Vec::new(),
            changed: false,
            management_key_default,
        }
    }

    /// A reset or a power cycle: like a YubiKey's, it forgets a verified PIN. (The applet
    /// has no way to forget a management-key authentication; a real card forgets that too.)
    pub fn reset(&mut self, why: &str) {
        self.app.deselect();
        self.chained = None;
        self.pending.clear();
        self.log_out();
        eprintln!("virtual-piv: {why}: PIN logged out");
    }

    /// VERIFY with P1 = FF: the applet forgets the verified PIN.
    fn log_out(&mut self) {
        let _ = self.call_app(0x00, 0x20, 0xFF, 0x80, &[], false);
    }

    /// One command APDU in, one response APDU out.
    pub fn handle(&mut self, apdu: &[u8]) -> Vec<u8> {
        if apdu.len() < 4 {
            return vec![0x67, 0x00];
        }
        let (cla, ins, p1, p2) = (apdu[0], apdu[1], apdu[2], apdu[3]);
        // GET RESPONSE: the next part of a long answer.
        if ins == 0xC0 {
            return self.next_chunk();
        }
        self.pending.clear();
        // Command chaining (CLA bit 0x10): collect, answer 9000, run the whole on the last part.
        let data = body(apdu);
        if cla & 0x10 != 0 {
            self.chained.get_or_insert_with(Vec::new).extend_from_slice(data);
            return SW_OK.to_vec();
        }
        let data = match self.chained.take() {
            Some(mut head) => {
                head.extend_from_slice(data);
                head
            }
            None => data.to_vec(),
        };
        let (status, reply) = self.dispatch(cla & !0x10, ins, p1, p2, &data);
        self.pending = reply;
        self.respond_chunked(status)
    }

    fn respond_chunked(&mut self, status: [u8; 2]) -> Vec<u8> {
        if self.pending.len() <= 256 {
            let mut out = std::mem::take(&mut self.pending);
            out.extend_from_slice(&status);
            return out;
        }
        self.next_chunk()
    }

    fn next_chunk(&mut self) -> Vec<u8> {
        let take = self.pending.len().min(256);
        let mut out: Vec<u8> = self.pending.drain(..take).collect();
        match self.pending.len() {
            0 => out.extend_from_slice(&SW_OK),
            n => out.extend_from_slice(&[0x61, n.min(255) as u8]),
        }
        out
    }

    fn dispatch(&mut self, cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> ([u8; 2], Vec<u8>) {
        match ins {
            // SELECT by the RID: the applet only knows the full AID. Selecting the PIV
            // application, even when it is the selected one, logs the PIN out on a YubiKey.
            0xA4 if data.starts_with(&PIV_RID) => {
                self.log_out();
                eprintln!("virtual-piv: SELECT: PIN logged out");
                self.call_app(cla, ins, p1, p2, &PIV_AID, true)
            }
            // GET VERSION: a YubiKey-like version (the yubikey crate takes only 4 and 5).
            0xFD => (SW_OK, self.version.to_vec()),
            // GET SERIAL.
            0xF8 => (SW_OK, self.serial.to_be_bytes().to_vec()),
            // ATTEST: a certificate for the slot's key, by the device attestation key.
            0xF9 => match self.slots.get(&p1) {
                Some(key) => match self.attestor.attest(p1, key, self.version, self.serial) {
                    Ok(der) => (SW_OK, der),
                    Err(_) => (SW_WRONG_DATA, Vec::new()),
                },
                None => (SW_NOT_FOUND, Vec::new()),
            },
            // GET METADATA of the PIN and the management key, as firmware 5.3 and later
            // answer it.
            0xF7 if p2 == PIN_REFERENCE && self.version >= METADATA_FROM => (SW_OK, self.pin_metadata()),
            0xF7 if p2 == MANAGEMENT_KEY && self.version >= METADATA_FROM => {
                let default = u8::from(self.management_key_default);
                // 3DES, PIN policy never, touch policy never; the default flag.
                (SW_OK, vec![0x01, 0x01, 0x03, 0x02, 0x02, 0x00, 0x01, 0x05, 0x01, default])
            }
            // SET MANAGEMENT KEY: the factory key is gone once it succeeds.
            0xFF if p1 == 0xFF && (p2 == 0xFE || p2 == 0xFF) => {
                let (status, reply) = self.call_app(cla, ins, p1, p2, data, false);
                if status == SW_OK && self.management_key_default {
                    self.management_key_default = false;
                    self.changed = true;
                }
                (status, reply)
            }
            // GET METADATA for a generated key.
            0xF7 => match self.slots.get(&p2) {
                Some(key) => (SW_OK, metadata(key)),
                None => (SW_NOT_FOUND, Vec::new()),
            },
            0xCB => match data {
                // CHUID-adjacent objects the applet answers oddly: not present.
                [0x5C, 0x03, 0x5F, 0xC1, 0x0C] | [0x5C, 0x03, 0x5F, 0xC1, 0x07] => (SW_NOT_FOUND, Vec::new()),
                // The f9 certificate object.
                [0x5C, 0x03, 0x5F, 0xFF, 0x01] => (SW_OK, self.attestor.f9_object()),
                _ => self.call_app(cla, ins, p1, p2, data, false),
            },
            // GENERATE ASYMMETRIC: remember the key and its policies for attestation.
            0x47 => {
                let (status, reply) = self.call_app(cla, ins, p1, p2, data, false);
                if status == SW_OK {
                    if let Some(point) = find_point(&reply) {
                        let policy =
                            |tag: u8| tlv_value(data, tag).and_then(|v| v.first().copied()).unwrap_or(1);
                        self.slots.insert(
                            p2,
                            SlotKey {
                                point: hex::encode(point),
                                pin_policy: policy(0xAA),
                                touch_policy: policy(0xAB),
                            },
                        );
                        self.changed = true;
                    }
                }
                (status, reply)
            }
            _ => self.call_app(cla, ins, p1, p2, data, false),
        }
    }

    /// The PIN's metadata: algorithm (PIN) and tries (total, left). The applet tells the tries
    /// left only while the PIN is not verified; once it is, the count was reset to the total.
    /// (The default flag is left out: the applet does not say whether the PIN was changed.)
    fn pin_metadata(&mut self) -> Vec<u8> {
        let left = match self.call_app(0x00, 0x20, 0x00, 0x80, &[], false).0 {
            [0x63, sw] if sw & 0xF0 == 0xC0 => sw & 0x0F,
            [0x69, 0x83] => 0,
            _ => PIN_TRIES,
        };
        vec![0x01, 0x01, 0xFF, 0x06, 0x02, PIN_TRIES, left]
    }

    /// Runs a command on the applet as an extended APDU with Le = 65536 (hosts send case-3/4
    /// commands without Le; the applet would then answer 61xx with no data).
    fn call_app(
        &mut self,
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
        select: bool,
    ) -> ([u8; 2], Vec<u8>) {
        let mut raw = vec![cla, ins, p1, p2, 0x00];
        if !data.is_empty() {
            raw.extend_from_slice(&(data.len() as u16).to_be_bytes());
            raw.extend_from_slice(data);
        }
        raw.extend_from_slice(&[0x00, 0x00]);
        let Ok(command) = Command::<7609>::try_from(raw.as_slice()) else {
            return ([0x67, 0x00], Vec::new());
        };
        let view: CommandView<'_> = command.as_view();
        let mut reply = heapless::Vec::<u8, 7609>::new();
        let result = if select {
            self.app.select(Interface::Contact, view, &mut reply)
        } else {
            self.app.call(Interface::Contact, view, &mut reply)
        };
        match result {
            Ok(()) => (SW_OK, reply.to_vec()),
            Err(status) => {
                let sw: u16 = status.into();
                (sw.to_be_bytes(), reply.to_vec())
            }
        }
    }
}

/// The data field of a short or extended command APDU.
fn body(apdu: &[u8]) -> &[u8] {
    match apdu.len() {
        0..=5 => &[],
        _ if apdu[4] != 0 => {
            let lc = usize::from(apdu[4]);
            apdu.get(5..5 + lc).unwrap_or(&[])
        }
        _ if apdu.len() >= 7 => {
            let lc = usize::from(u16::from_be_bytes([apdu[5], apdu[6]]));
            apdu.get(7..7 + lc).unwrap_or(&[])
        }
        _ => &[],
    }
}

/// Walks BER-TLV (1- or 2-byte tags, definite lengths) for the value of `tag`, one level deep
/// into constructed 7F49 and AC templates.
fn tlv_value(mut data: &[u8], tag: u8) -> Option<&[u8]> {
    while data.len() >= 2 {
        let (t, rest) = if data[0] & 0x1F == 0x1F {
            (u16::from_be_bytes([data[0], data[1]]), &data[2..])
        } else {
            (u16::from(data[0]), &data[1..])
        };
        let (len, rest) = match rest.first()? {
            l if *l < 0x80 => (usize::from(*l), &rest[1..]),
            0x81 => (usize::from(*rest.get(1)?), &rest[2..]),
            0x82 => (usize::from(u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?])), &rest[3..]),
            _ => return None,
        };
        let value = rest.get(..len)?;
        if t == u16::from(tag) {
            return Some(value);
        }
        if t == 0x7F49 || t == 0xAC {
            if let Some(v) = tlv_value(value, tag) {
                return Some(v);
            }
        }
        data = &rest[len..];
    }
    None
}

fn find_point(reply: &[u8]) -> Option<Vec<u8>> {
    tlv_value(reply, 0x86).filter(|p| p.len() == 65 && p[0] == 0x04).map(<[u8]>::to_vec)
}

/// GET METADATA answer: algorithm ECCP256, policies, generated on the card, the public key.
fn metadata(key: &SlotKey) -> Vec<u8> {
    let point = hex::decode(&key.point).unwrap_or_default();
    let mut out = vec![0x01, 0x01, 0x11, 0x02, 0x02, key.pin_policy, key.touch_policy, 0x03, 0x01, 0x01];
    out.extend_from_slice(&[0x04, 0x43, 0x86, 0x41]);
    out.extend_from_slice(&point);
    out
}
