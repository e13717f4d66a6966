//! The change policy against random writes by an officer's device
//! (`wardcheck_core::testing::hostile`): any object, any operation, in any order and
//! grouping. Whatever it lets through never changes a status away from what reviewers
//! decided, never makes the document unreadable (now or after a save and load), and never
//! alters an evidence record's signed fields. It never panics. The `policy` fuzz target
//! runs the same check on writes decoded from bytes.

use proptest::prelude::*;
use wardcheck_core::testing::hostile::{Value, Write, check_writes, reviewed};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<usize>().prop_map(Value::Str),
        prop_oneof![Just(0i64), Just(1), Just(-1), any::<i64>()].prop_map(Value::Int),
        prop_oneof![Just(0u64), Just(1), Just(2), Just(u64::MAX)].prop_map(Value::Uint),
        prop_oneof![Just(0.0f64), Just(1.0), Just(0.5), Just(f64::NAN)].prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<i64>().prop_map(Value::Counter),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    let obj = any::<usize>();
    let key = any::<usize>();
    prop_oneof![
        (obj, key, value()).prop_map(|(obj, key, value)| Write::Put { obj, key, value }),
        (obj, key, 0u8..3).prop_map(|(obj, key, kind)| Write::PutObject { obj, key, kind }),
        (obj, key).prop_map(|(obj, key)| Write::Delete { obj, key }),
        (obj, key, value()).prop_map(|(obj, at, value)| Write::Insert { obj, at, value }),
        (obj, 0usize..4, value(), any::<bool>(), any::<u8>()).prop_map(
            |(obj, action, round, mine, fields)| Write::Entry {
                obj,
                action,
                round,
                mine,
                fields
            }
        ),
        (obj, key, -2isize..3, "[a-z]{0,3}").prop_map(|(obj, at, delete, text)| {
            Write::Splice {
                obj,
                at,
                delete,
                text,
            }
        }),
        (obj, key).prop_map(|(obj, key)| Write::Increment { obj, key }),
    ]
}

#[test]
fn what_the_policy_lets_an_officer_write_keeps_reviews_readability_and_evidence() {
    let before = reviewed();
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let cases = 400;
    let strategy = (
        prop::collection::vec(prop::collection::vec(write(), 1..5), 1..4),
        any::<[u8; 16]>(),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(&strategy, |(changes, actor)| {
            if check_writes(&before, &changes, actor).map_err(TestCaseError::fail)? {
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    // Not a test that passes by refusing everything: a share of the random writes is
    // harmless (notes, comments, steps in the officer's name) and taken.
    let taken = taken.into_inner();
    eprintln!("{taken} of {cases} random change sets taken");
    assert!(
        taken * 20 >= cases as usize,
        "only {taken} of {cases} taken"
    );
}
