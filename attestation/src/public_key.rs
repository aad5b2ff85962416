use crate::AttestationError;

/// A validated P-256 public key, kept in uncompressed SEC1 form (`04 || x || y`).
///
/// Construction checks that the point is on the curve and not the identity, so holders
/// of this type never need to re-validate it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct P256PublicKey {
    sec1: [u8; 65],
}

impl P256PublicKey {
    /// Parses a SEC1 point (compressed or uncompressed) and validates it.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, AttestationError> {
        let key = p256::PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| AttestationError::InvalidPublicKey("not a point on P-256"))?;
        Ok(Self::from_validated(&key))
    }

    /// Builds a key from its affine coordinates (as in a COSE_Key) and validates it.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<Self, AttestationError> {
        if x.len() != 32 || y.len() != 32 {
            return Err(AttestationError::InvalidPublicKey("coordinates must be 32 bytes each"));
        }
        let mut sec1 = [0u8; 65];
        sec1[0] = 0x04;
        sec1[1..33].copy_from_slice(x);
        sec1[33..].copy_from_slice(y);
        Self::from_sec1(&sec1)
    }

    fn from_validated(key: &p256::PublicKey) -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let point = key.to_encoded_point(false);
        let mut sec1 = [0u8; 65];
        sec1.copy_from_slice(point.as_bytes());
        Self { sec1 }
    }

    /// The uncompressed SEC1 encoding, 65 bytes.
    pub fn sec1(&self) -> &[u8; 65] {
        &self.sec1
    }

    /// The affine x coordinate, 32 bytes big-endian.
    pub fn x(&self) -> &[u8] {
        &self.sec1[1..33]
    }

    /// The affine y coordinate, 32 bytes big-endian.
    pub fn y(&self) -> &[u8] {
        &self.sec1[33..]
    }
}

impl std::fmt::Debug for P256PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P256PublicKey(")?;
        for b in &self.sec1[..9] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The P-256 generator point.
    const GX: [u8; 32] = [
        0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77,
        0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
    ];
    const GY: [u8; 32] = [
        0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b,
        0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
    ];

    #[test]
    fn accepts_a_curve_point_and_keeps_coordinates() {
        let key = P256PublicKey::from_coordinates(&GX, &GY).unwrap();
        assert_eq!(key.x(), GX);
        assert_eq!(key.y(), GY);
        assert_eq!(P256PublicKey::from_sec1(key.sec1()).unwrap(), key);
    }

    #[test]
    fn rejects_points_off_the_curve_and_bad_lengths() {
        let mut y = GY;
        y[31] ^= 1;
        assert!(P256PublicKey::from_coordinates(&GX, &y).is_err());
        assert!(P256PublicKey::from_coordinates(&GX[..31], &GY).is_err());
        assert!(P256PublicKey::from_sec1(&[0u8; 65]).is_err());
    }
}
