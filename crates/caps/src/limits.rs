//! Per-category limits on concurrent capability requests, shared by every user of the caps.

use std::fmt;
use std::sync::Arc;

use async_lock::{Semaphore, SemaphoreGuardArc};

/// What kind of capability traffic a request is, for [`HttpLimits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpCategory {
    /// Texture downloads (`GetTexture`, `ViewerAsset` with `texture_id`).
    Texture,
    /// Mesh downloads (`GetMesh`, `GetMesh2`, `ViewerAsset` with `mesh_id`).
    Mesh,
    /// Inventory fetches (`FetchInventory2`, `FetchInventoryDescendents2`, library fetches).
    Inventory,
    /// Everything else (`SimulatorFeatures`, `GetDisplayNames`, uploads ...).
    Other,
}

impl HttpCategory {
    /// Every category.
    pub const ALL: [HttpCategory; 4] = [Self::Texture, Self::Mesh, Self::Inventory, Self::Other];

    fn index(self) -> usize {
        match self {
            Self::Texture => 0,
            Self::Mesh => 1,
            Self::Inventory => 2,
            Self::Other => 3,
        }
    }
}

/// Limits on concurrent HTTP requests per [`HttpCategory`].
///
/// Cheap to clone; clones share the same permits, so one `HttpLimits` given to every part of
/// a client (textures, mesh, inventory) bounds the whole client. Viewers keep such limits
/// because simulators throttle or drop agents that open too many connections.
///
/// Event-queue polls and seed requests take no permit: there is at most one of each per
/// region.
#[derive(Clone)]
pub struct HttpLimits {
    slots: Arc<[Slot; 4]>,
}

struct Slot {
    limit: usize,
    sem: Arc<Semaphore>,
}

impl fmt::Debug for HttpLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HttpLimits");
        for c in HttpCategory::ALL {
            let s = &self.slots[c.index()];
            d.field(
                match c {
                    HttpCategory::Texture => "texture",
                    HttpCategory::Mesh => "mesh",
                    HttpCategory::Inventory => "inventory",
                    HttpCategory::Other => "other",
                },
                &format_args!("{}/{}", s.limit - s.sem.available_permits(), s.limit),
            );
        }
        d.finish()
    }
}

impl Default for HttpLimits {
    /// Textures 8, mesh 8, inventory 4, other 8.
    fn default() -> Self {
        Self::builder().build()
    }
}

impl HttpLimits {
    /// The builder of custom limits (starting from the defaults).
    pub fn builder() -> HttpLimitsBuilder {
        HttpLimitsBuilder::default()
    }

    /// Waits for a free slot of `category`; the slot is held until the permit is dropped.
    pub async fn acquire(&self, category: HttpCategory) -> HttpPermit {
        let guard = self.slots[category.index()].sem.acquire_arc().await;
        HttpPermit {
            _guard: guard,
            category,
        }
    }

    /// A free slot of `category` if there is one now.
    pub fn try_acquire(&self, category: HttpCategory) -> Option<HttpPermit> {
        let guard = self.slots[category.index()].sem.try_acquire_arc()?;
        Some(HttpPermit {
            _guard: guard,
            category,
        })
    }

    /// The configured number of concurrent requests of `category`.
    pub fn limit(&self, category: HttpCategory) -> usize {
        self.slots[category.index()].limit
    }

    /// How many requests of `category` are running now.
    pub fn in_use(&self, category: HttpCategory) -> usize {
        let s = &self.slots[category.index()];
        s.limit - s.sem.available_permits().min(s.limit)
    }
}

/// A held slot of an [`HttpLimits`] category; dropping it frees the slot.
#[must_use = "the slot is released as soon as the permit is dropped"]
pub struct HttpPermit {
    _guard: SemaphoreGuardArc,
    category: HttpCategory,
}

impl HttpPermit {
    /// The category this permit belongs to.
    pub fn category(&self) -> HttpCategory {
        self.category
    }
}

impl fmt::Debug for HttpPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPermit")
            .field("category", &self.category)
            .finish()
    }
}

/// Builder of [`HttpLimits`]. A limit of 0 is raised to 1 (a category that can never run
/// would hang its callers).
#[derive(Clone, Debug)]
#[must_use = "call build() to get the HttpLimits"]
pub struct HttpLimitsBuilder {
    limits: [usize; 4],
}

impl Default for HttpLimitsBuilder {
    fn default() -> Self {
        Self {
            limits: [8, 8, 4, 8],
        }
    }
}

impl HttpLimitsBuilder {
    /// Concurrent requests of `category`.
    pub fn limit(mut self, category: HttpCategory, n: usize) -> Self {
        self.limits[category.index()] = n.max(1);
        self
    }

    /// Concurrent texture requests (default 8).
    pub fn texture(self, n: usize) -> Self {
        self.limit(HttpCategory::Texture, n)
    }

    /// Concurrent mesh requests (default 8).
    pub fn mesh(self, n: usize) -> Self {
        self.limit(HttpCategory::Mesh, n)
    }

    /// Concurrent inventory requests (default 4).
    pub fn inventory(self, n: usize) -> Self {
        self.limit(HttpCategory::Inventory, n)
    }

    /// Concurrent other requests (default 8).
    pub fn other(self, n: usize) -> Self {
        self.limit(HttpCategory::Other, n)
    }

    /// The limits.
    pub fn build(self) -> HttpLimits {
        let slot = |n: usize| Slot {
            limit: n,
            sem: Arc::new(Semaphore::new(n)),
        };
        let [t, m, i, o] = self.limits;
        HttpLimits {
            slots: Arc::new([slot(t), slot(m), slot(i), slot(o)]),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn categories_are_independent_and_shared_between_clones() {
        let limits = HttpLimits::builder()
            .texture(2)
            .mesh(1)
            .inventory(0)
            .build();
        assert_eq!(limits.limit(HttpCategory::Inventory), 1);
        let copy = limits.clone();
        let a = limits.try_acquire(HttpCategory::Texture).unwrap();
        let _b = copy.try_acquire(HttpCategory::Texture).unwrap();
        assert!(limits.try_acquire(HttpCategory::Texture).is_none());
        assert_eq!(copy.in_use(HttpCategory::Texture), 2);
        // Other categories still have room.
        let m = copy.try_acquire(HttpCategory::Mesh).unwrap();
        assert_eq!(m.category(), HttpCategory::Mesh);
        assert!(limits.try_acquire(HttpCategory::Mesh).is_none());
        assert!(limits.try_acquire(HttpCategory::Other).is_some());
        drop(a);
        assert_eq!(limits.in_use(HttpCategory::Texture), 1);
        assert!(copy.try_acquire(HttpCategory::Texture).is_some());
    }

    #[test]
    fn acquire_waits_for_a_release() {
        use futures_lite::future::{block_on, poll_once};
        let limits = HttpLimits::builder().inventory(1).build();
        let held = limits.try_acquire(HttpCategory::Inventory).unwrap();
        let mut waiting = Box::pin(limits.acquire(HttpCategory::Inventory));
        assert!(
            block_on(poll_once(&mut waiting)).is_none(),
            "must wait while the slot is held"
        );
        drop(held);
        let p = block_on(waiting);
        assert_eq!(p.category(), HttpCategory::Inventory);
        assert_eq!(limits.in_use(HttpCategory::Inventory), 1);
    }
}
