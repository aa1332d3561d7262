//! The memory store's failures in the store's backend-neutral kinds (`StoreError`): the
//! limits of its tables, and a lock left poisoned by a panic.

use std::sync::PoisonError;

use crate::error::StoreError;

/// A token longer than a slot's `u32` length can say.
pub(super) fn too_long() -> StoreError {
    StoreError::InvalidArgument("a token longer than 4 GiB cannot be stored".into())
}

/// More tokens than a slot number (`u32`) can name.
pub(super) fn full() -> StoreError {
    StoreError::InvalidArgument("the memory store holds at most 2^32 - 1 tokens".into())
}

/// The tables' lock, poisoned by a panic in another thread: their state is unknown.
pub(super) fn poisoned<T>(_: PoisonError<T>) -> StoreError {
    StoreError::Poisoned
}
