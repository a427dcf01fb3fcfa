//! Identifiers: 26 characters of lowercase Crockford base32, a 48-bit millisecond timestamp
//! then 80 random bits (the ULID layout), so ids sort by creation and are unguessable.

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

pub fn new_id() -> String {
    render(fresh())
}

/// `n` ids that sort in the order given (one timestamp, consecutive random parts), for
/// items created together whose listing order matters (a generation's variants).
pub fn new_ids(n: usize) -> Vec<String> {
    let base = fresh();
    (0..n as u128).map(|i| render(base.wrapping_add(i))).collect()
}

fn fresh() -> u128 {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    // The top random bit stays clear, so adding a count never carries into the timestamp.
    random[0] &= 0x7f;
    let mut value: u128 = (millis as u128 & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= (*byte as u128) << (8 * (9 - i));
    }
    value
}

fn render(value: u128) -> String {
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
        let batch = super::new_ids(3000);
        assert!(batch.windows(2).all(|w| w[0] < w[1]));
    }
}
