//! Redemption codes: the credential of a gift link, so unguessable, and typed by people from
//! a printed card, so forgiving. No I/O here; uniqueness is the store's (a conditional write
//! on the code's global item).

use rand::RngCore;

/// Crockford's base32: no I, L, O or U, so nothing reads as another character.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 characters × 5 bits = 80 bits of randomness.
pub const CODE_CHARS: usize = 16;
pub const CODE_BITS: usize = CODE_CHARS * 5;

/// A normalised code: 16 characters of the alphabet, no separators.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RedemptionCode(String);

impl RedemptionCode {
    /// A fresh code: 80 bits from the thread's cryptographically secure generator (ChaCha12,
    /// seeded and reseeded from the operating system).
    pub fn generate() -> Self {
        let mut bytes = [0u8; CODE_BITS / 8];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bits(&bytes)
    }

    fn from_bits(bytes: &[u8; CODE_BITS / 8]) -> Self {
        let value = bytes.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        let code = (0..CODE_CHARS).rev().map(|i| ALPHABET[((value >> (5 * i)) & 0x1f) as usize] as char).collect();
        Self(code)
    }

    /// Reads what a person typed: case-insensitive, hyphens and spaces ignored, and the
    /// look-alikes Crockford maps (O → 0, I and L → 1). `None` if it cannot be a code, so an
    /// unknown and a malformed code can be answered the same way.
    pub fn parse(typed: &str) -> Option<Self> {
        let mut code = String::with_capacity(CODE_CHARS);
        for c in typed.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
                _ => return None,
            };
            code.push(c);
        }
        (code.len() == CODE_CHARS).then_some(Self(code))
    }

    /// The normalised form, as stored and as a key part.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How it is printed and shown: `ABCD-EFGH-JKMN-PQRS`.
    pub fn display(&self) -> String {
        self.0.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_80_bits_in_16_characters() {
        assert_eq!(CODE_BITS, 80);
        assert_eq!(RedemptionCode::from_bits(&[0; 10]).as_str(), "0000000000000000");
        assert_eq!(RedemptionCode::from_bits(&[0xff; 10]).as_str(), "ZZZZZZZZZZZZZZZZ");
        // The lowest bit changes the last character: every bit is used.
        let mut one = [0u8; 10];
        one[9] = 1;
        assert_eq!(RedemptionCode::from_bits(&one).as_str(), "0000000000000001");
        let mut high = [0u8; 10];
        high[0] = 0x80;
        assert_eq!(RedemptionCode::from_bits(&high).as_str(), "G000000000000000");
    }

    #[test]
    fn fresh_codes_differ_and_read_back() {
        let codes: std::collections::HashSet<String> =
            (0..10_000).map(|_| RedemptionCode::generate().as_str().to_owned()).collect();
        assert_eq!(codes.len(), 10_000);
        let code = RedemptionCode::generate();
        assert_eq!(RedemptionCode::parse(&code.display()), Some(code.clone()));
        assert_eq!(code.display().len(), 19);
    }

    #[test]
    fn typing_is_forgiving_but_not_loose() {
        let code = RedemptionCode::parse("ABCD-EFGH-JKMN-PQRS").unwrap();
        assert_eq!(RedemptionCode::parse("abcd efgh jkmn pqrs"), Some(code.clone()));
        assert_eq!(RedemptionCode::parse("abcdefghjkmnpqrs"), Some(code));
        assert_eq!(RedemptionCode::parse("O0IL-0000-0000-0000").unwrap().as_str(), "0011000000000000");
        assert_eq!(RedemptionCode::parse("ABCD-EFGH-JKMN-PQR"), None, "too short");
        assert_eq!(RedemptionCode::parse("ABCD-EFGH-JKMN-PQRSU"), None, "U is not in the alphabet");
        assert_eq!(RedemptionCode::parse("ABCD-EFGH-JKMN-PQ#S"), None);
        assert_eq!(RedemptionCode::parse("ÄBCD-EFGH-JKMN-PQRS"), None);
    }
}
