//! What the domain needs from outside, bundled once: a store, a clock, randomness and a place to
//! run slow hashing.
//!
//! [`Deps`] is generic over the store so that each capability asks only for the storage trait
//! it owns (`Deps<dyn DirectoryStore>`, `Deps<dyn MethodStore>`, …): a module cannot read or
//! write what its layer does not own. A layer above hands a narrower view down with
//! [`Deps::with_store`] (trait upcasting).

use std::sync::Arc;

use crate::kernel::clock::Clock;
use crate::kernel::entropy::Entropy;
use crate::kernel::typed_secret::Offload;

/// Everything the domain needs from outside; `S` is the storage trait a capability owns.
pub struct Deps<S: ?Sized> {
    pub store: Arc<S>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// Where argon2 runs ([`crate::kernel::typed_secret`]).
    pub offload: Arc<dyn Offload>,
}

impl<S: ?Sized> Clone for Deps<S> {
    fn clone(&self) -> Self {
        Deps {
            store: self.store.clone(),
            clock: self.clock.clone(),
            entropy: self.entropy.clone(),
            offload: self.offload.clone(),
        }
    }
}

impl<S: ?Sized> Deps<S> {
    /// The same dependencies with a narrower view of the store, for a capability lower down:
    /// `deps.with_store(|s| -> Arc<dyn DirectoryStore> { s })`.
    pub fn with_store<T: ?Sized>(&self, narrow: impl FnOnce(Arc<S>) -> Arc<T>) -> Deps<T> {
        Deps {
            store: narrow(self.store.clone()),
            clock: self.clock.clone(),
            entropy: self.entropy.clone(),
            offload: self.offload.clone(),
        }
    }
}

/// Narrows a [`Deps`] to a lower capability's storage trait:
/// `narrow!(self.deps, DirectoryStore)`.
#[macro_export]
macro_rules! narrow {
    ($deps:expr, $store:path) => {
        $deps.with_store(|s| -> ::std::sync::Arc<dyn $store> { s })
    };
}
