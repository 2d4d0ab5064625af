//! Compact storage of large arrays in model files: little-endian bytes, base64-encoded, so a
//! model with millions of weights stays a JSON document of reasonable size.

use serde::{Deserialize, Serialize};

/// Dense `f32` data stored compactly in a model file: little-endian bytes, base64-encoded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct F32s(pub Vec<f32>);

impl Serialize for F32s {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * 4);
        for x in &self.0 {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        s.serialize_str(&base64_encode(&bytes))
    }
}

impl<'de> Deserialize<'de> for F32s {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64_decode(&text).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom("f32 data length is not a multiple of 4 bytes"));
        }
        Ok(F32s(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }
}

/// Dense `u32` data stored like [`F32s`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct U32s(pub Vec<u32>);

impl Serialize for U32s {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&base64_encode(&bytes))
    }
}

impl<'de> Deserialize<'de> for U32s {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let bytes = base64_decode(&String::deserialize(d)?).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom("u32 data length is not a multiple of 4 bytes"));
        }
        Ok(U32s(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> std::result::Result<Vec<u8>, String> {
    let mut lookup = [255u8; 256];
    for (i, c) in B64.iter().enumerate() {
        lookup[*c as usize] = i as u8;
    }
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if clean.len() % 4 != 0 {
        return Err("base64 length is not a multiple of 4".into());
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for quad in clean.chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for &c in quad {
            let v = if c == b'=' {
                pad += 1;
                0
            } else {
                match lookup[c as usize] {
                    255 => return Err(format!("invalid base64 character {:?}", c as char)),
                    v => u32::from(v),
                }
            };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad.min(2)]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [vec![], vec![1.5f32], vec![1.0, -2.0], vec![0.1, 0.2, 0.3, f32::MIN_POSITIVE]] {
            let json = serde_json::to_string(&F32s(data.clone())).expect("ser");
            let back: F32s = serde_json::from_str(&json).expect("de");
            assert!(back.0.iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()) && back.0.len() == data.len());
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8=").expect("decode"), b"fo");
        assert!(base64_decode("Zm8").is_err());
    }
}
