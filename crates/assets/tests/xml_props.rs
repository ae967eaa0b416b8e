//! Property tests: any asset survives write → parse unchanged.
#![allow(clippy::unwrap_used)]

use opensim_assets::AssetBase;
use opensim_assets::xml::{parse_asset_base, write_asset_base};
use proptest::prelude::*;

proptest! {
    #[test]
    fn asset_base_round_trips(
        id in any::<u128>(),
        name in "\\PC{0,64}",
        description in "[a-z<>&\"' ]{0,64}",
        asset_type in any::<i8>(),
        local in any::<bool>(),
        temporary in any::<bool>(),
        creator_id in "[0-9a-f;:/.-]{0,80}",
        flags in 0u32..8,
        data in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let a = AssetBase { id: uuid::Uuid::from_u128(id), name, description, asset_type, local, temporary, creator_id, flags, data };
        let mut out = Vec::new();
        write_asset_base(&mut out, &a.meta(), &a.data);
        let b = parse_asset_base(&out).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_asset_base(&bytes);
        let _ = opensim_assets::xml::parse_string_array(&bytes);
    }
}
