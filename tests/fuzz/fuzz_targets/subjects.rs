//! Subjects and the subscription index against a plain model: validity
//! rules, `pattern_matches` against a token-by-token reference, `is_subset`
//! against sampled subjects, and the index's match (cache included) against
//! a list of subscriptions scanned one by one, across inserts and removes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore_core::ids::SubKey;
use percore_core::subject::{is_subset, is_valid_subscribe_subject, pattern_matches};
use percore_core::sublist::SubscriptionIndex;

/// A small alphabet so that patterns and subjects meet often.
fn text(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|b| match b % 8 {
            0 => b'.',
            1 => b'*',
            2 => b'>',
            3 => b'a',
            4 => b'b',
            5 => b'c',
            6 => b'.',
            _ => b'a',
        })
        .collect()
}

fn reference_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let p: Vec<&[u8]> = pattern.split(|&b| b == b'.').collect();
    let s: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    if s.iter().any(|t| t.is_empty()) {
        return false;
    }
    for (i, token) in p.iter().enumerate() {
        if *token == b">" {
            return s.len() > i;
        }
        match s.get(i) {
            Some(t) if *token == b"*" || token == t => {}
            _ => return false,
        }
    }
    p.len() == s.len()
}

fuzz_target!(|data: &[u8]| {
    let chunks: Vec<Vec<u8>> = data.split(|&b| b == 0xff).map(text).collect();
    let patterns: Vec<&Vec<u8>> = chunks
        .iter()
        .filter(|p| is_valid_subscribe_subject(p))
        .take(16)
        .collect();
    let subjects: Vec<&Vec<u8>> = chunks
        .iter()
        .filter(|s| !s.is_empty() && !s.contains(&b'*') && !s.contains(&b'>'))
        .take(16)
        .collect();
    for pattern in &patterns {
        for subject in &subjects {
            assert_eq!(
                pattern_matches(pattern, subject),
                reference_matches(pattern, subject),
                "{:?} {:?}",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(subject)
            );
        }
        for other in &patterns {
            if is_subset(pattern, other) {
                for subject in &subjects {
                    assert!(
                        !pattern_matches(pattern, subject) || pattern_matches(other, subject),
                        "subset broken"
                    );
                }
            }
        }
    }
    // Insert every pattern, remove every third, and match each subject
    // twice (the second from the cache) against a scan of what is left.
    let mut index = SubscriptionIndex::new();
    let mut live: Vec<(usize, &Vec<u8>)> = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        index.insert_local(pattern, None, SubKey::new(i));
        live.push((i, pattern));
        for subject in &subjects {
            let _ = index.matches(subject);
        }
        if i % 3 == 2 {
            let (key, removed) = live.remove(0);
            assert!(index.remove_local(removed, None, SubKey::new(key)));
        }
    }
    for subject in &subjects {
        for _ in 0..2 {
            let mut got: Vec<usize> = index
                .matches(subject)
                .local_plain
                .iter()
                .map(|k| k.index())
                .collect();
            got.sort_unstable();
            let mut want: Vec<usize> = live
                .iter()
                .filter(|(_, p)| reference_matches(p, subject))
                .map(|(k, _)| *k)
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(subject));
        }
    }
});
