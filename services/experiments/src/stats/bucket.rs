use std::hash::Hasher;

use siphasher::sip::SipHasher24;

/// SipHash-2-4 with a zero key of `salt` followed by `user_id`. This equals
/// ClickHouse's `sipHash64(concat(salt, user_id))`, so a split can be
/// reproduced in SQL.
pub fn salted_hash(salt: &str, user_id: &str) -> u64 {
    let mut hasher = SipHasher24::new_with_keys(0, 0);
    hasher.write(salt.as_bytes());
    hasher.write(user_id.as_bytes());
    hasher.finish()
}

/// Bucket of a user in `0..bucket_count`: [`salted_hash`] modulo
/// `bucket_count`, which must be positive.
pub fn bucket_of(user_id: &str, salt: &str, bucket_count: u32) -> u32 {
    (salted_hash(salt, user_id) % u64::from(bucket_count)) as u32
}
