//! Proptest strategies shared by the integration tests.

#![allow(dead_code)]

use opensim_llsd::{Date, Map, Uuid, Value};
use proptest::prelude::*;

/// Any `f64` bit pattern: NaNs with payloads, both zeros, subnormals, infinities.
pub fn any_real() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            -1.5,
            24.009,
            256.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN
        ]),
    ]
}

/// Any representable date, with whole or arbitrary fractional seconds.
pub fn any_date() -> impl Strategy<Value = Date> {
    prop_oneof![
        (-62_135_596_800i64..253_402_300_800)
            .prop_map(|s| Date::from_unix_secs(s).expect("in range")),
        (-62_135_596_800.0f64..253_402_300_799.0).prop_filter_map("in range", Date::from_secs_f64),
        (-2.0f64..2.0).prop_filter_map("in range", Date::from_secs_f64),
    ]
}

/// A leaf (non-container) value; `text` generates strings, keys and URIs.
pub fn leaf(
    text: impl Strategy<Value = String> + Clone + 'static,
    real: impl Strategy<Value = f64> + 'static,
    date: impl Strategy<Value = Date> + 'static,
) -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Undef),
        any::<bool>().prop_map(Value::Boolean),
        any::<i32>().prop_map(Value::Integer),
        real.prop_map(Value::Real),
        text.clone().prop_map(Value::String),
        any::<u128>().prop_map(|u| Value::Uuid(Uuid::from_u128(u))),
        date.prop_map(Value::Date),
        text.prop_map(Value::Uri),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Binary),
    ]
    .boxed()
}

/// Trees of `leaf` values, maps with possibly duplicated keys.
pub fn tree(
    leaf: BoxedStrategy<Value>,
    key: impl Strategy<Value = String> + Clone + 'static,
) -> BoxedStrategy<Value> {
    leaf.prop_recursive(5, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|e| Value::Map(Map::from(e))),
        ]
    })
    .boxed()
}

/// Every value the model can hold.
pub fn any_value() -> BoxedStrategy<Value> {
    tree(
        leaf(any::<String>(), any_real(), any_date()),
        any::<String>(),
    )
}
