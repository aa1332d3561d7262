//! The memory store's settings: none. Every memory store is its own (the process-wide one
//! is the one store of its kind).

use std::sync::Arc;

use super::MemoryStore;
use crate::error::Result;
use crate::store::backends::{Backend, Fields};
use crate::store::TokenStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySettings;

impl Backend for MemorySettings {
    fn decode(_settings: &Fields) -> Result<Self> {
        Ok(MemorySettings)
    }

    fn key(&self) -> String {
        String::new()
    }

    fn open(&self) -> Arc<dyn TokenStore> {
        Arc::new(MemoryStore::new())
    }

    #[cfg(test)]
    fn test_store() -> Option<crate::store::backends::TestStore> {
        Some(crate::store::backends::TestStore {
            store: Box::new(MemoryStore::new()),
            _keep: Box::new(()),
        })
    }
}
