//! Identifiers: 26 characters of lowercase Crockford base32, a 48-bit millisecond timestamp
//! then 80 random bits (the ULID layout), so ids sort by creation and are unguessable.

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

pub fn new_id() -> String {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    let mut value: u128 = (millis as u128 & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= (*byte as u128) << (8 * (9 - i));
    }
    (0..26).rev().map(|i| ALPHABET[((value >> (5 * i)) & 0x1f) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_26_chars_unique_and_sort_by_time() {
        let a = super::new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_id();
        assert_eq!(a.len(), 26);
        assert!(a < b, "{a} !< {b}");
        assert!(a.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
