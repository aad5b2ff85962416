//! The vpcd protocol (vsmartcard): the card connects to the reader driver inside pcscd; every
//! message is a big-endian u16 length and a body. A 1-byte body is a control code (0 power off,
//! 1 power on, 2 reset, 4 get ATR); anything else is a command APDU, answered by the response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// A YubiKey 5's ATR.
pub const ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59, 0x75,
    0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

pub enum Event {
    Apdu(Vec<u8>),
    Reset,
    PowerOff,
}

pub struct Link {
    stream: TcpStream,
}

fn quickack(stream: &TcpStream) {
    // vpcd writes length and body separately: without QUICKACK each APDU waits out delayed ACK.
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a properly sized int option.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl Link {
    pub fn connect(port: u16) -> std::io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream })
    }

    /// The next APDU, reset or power-off; answers ATR requests and ignores power-on itself.
    pub fn next(&mut self) -> std::io::Result<Event> {
        loop {
            quickack(&self.stream);
            let mut len = [0u8; 2];
            self.stream.read_exact(&mut len)?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            quickack(&self.stream);
            self.stream.read_exact(&mut body)?;
            match body.as_slice() {
                [4] => self.send(&ATR)?,
                [1] => {}
                [0] => return Ok(Event::PowerOff),
                [2] => return Ok(Event::Reset),
                _ => return Ok(Event::Apdu(body)),
            }
        }
    }

    pub fn send(&mut self, body: &[u8]) -> std::io::Result<()> {
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        self.stream.write_all(&out)
    }
}
