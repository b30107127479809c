//! [`GateLayer`]: a [`Gate`] in front of a `tower` service (feature `tower`).
//!
//! Every request waits for a permit before it reaches the inner service and
//! holds it until the inner service's response future completes. Requests
//! the gate rejects (shed, timed out, too many waiting) fail fast with
//! [`GateServiceError::Rejected`], before the inner service sees them, so an
//! HTTP or gRPC server can answer 503 with a `Retry-After` at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::{Gate, GateError};
use crate::AcquireOptions;

type OptionsFn<Req> = Arc<dyn Fn(&Req) -> AcquireOptions + Send + Sync>;

/// Puts a [`Gate`] in front of a service.
///
/// ```
/// use stormpool::gate::{Gate, GateLayer};
/// use stormpool::{AcquireOptions, Priority};
///
/// # fn main() -> Result<(), stormpool::ConfigError> {
/// let gate = Gate::builder().capacity(64).build()?;
/// // Requests carry their class in a header, say; here every one is Normal.
/// let layer = GateLayer::new(gate).options(|_req: &String| AcquireOptions::new().priority(Priority::Normal));
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
pub struct GateLayer<Req> {
    gate: Gate,
    options: OptionsFn<Req>,
}

impl<Req> Clone for GateLayer<Req> {
    fn clone(&self) -> Self {
        GateLayer {
            gate: self.gate.clone(),
            options: self.options.clone(),
        }
    }
}

impl<Req> fmt::Debug for GateLayer<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateLayer")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<Req> GateLayer<Req> {
    /// A layer admitting every request with the default options.
    pub fn new(gate: Gate) -> Self {
        GateLayer {
            gate,
            options: Arc::new(|_| AcquireOptions::new()),
        }
    }

    /// Derives each request's options (deadline, priority class, fairness
    /// key) from the request itself.
    pub fn options(
        mut self,
        options: impl Fn(&Req) -> AcquireOptions + Send + Sync + 'static,
    ) -> Self {
        self.options = Arc::new(options);
        self
    }
}

impl<S, Req> Layer<S> for GateLayer<Req> {
    type Service = GateService<S, Req>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            inner,
            gate: self.gate.clone(),
            options: self.options.clone(),
        }
    }
}

/// The service [`GateLayer`] produces.
pub struct GateService<S, Req> {
    inner: S,
    gate: Gate,
    options: OptionsFn<Req>,
}

impl<S: Clone, Req> Clone for GateService<S, Req> {
    fn clone(&self) -> Self {
        GateService {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
            options: self.options.clone(),
        }
    }
}

impl<S: fmt::Debug, Req> fmt::Debug for GateService<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateService")
            .field("inner", &self.inner)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// The error of a [`GateService`]: rejected by the gate, or failed inside.
#[derive(Debug)]
#[non_exhaustive]
pub enum GateServiceError<E> {
    /// The gate did not admit the request; the inner service never saw it.
    Rejected(GateError),
    /// The inner service failed.
    Service(E),
}

impl<E: fmt::Display> fmt::Display for GateServiceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateServiceError::Rejected(_) => f.write_str("request not admitted by the gate"),
            GateServiceError::Service(_) => f.write_str("the gated service failed"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for GateServiceError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GateServiceError::Rejected(e) => Some(e),
            GateServiceError::Service(e) => Some(e),
        }
    }
}

impl<S, Req> Service<Req> for GateService<S, Req>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = GateServiceError<S::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(GateServiceError::Service)
    }

    /// # Cancel safety
    ///
    /// Dropping the returned future while it waits for a permit leaves the
    /// gate's queue in O(1); dropping it later releases the permit.
    fn call(&mut self, request: Req) -> Self::Future {
        // The clone that was driven to readiness serves this request; the
        // fresh clone stays behind for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let options = (self.options)(&request);
        let gate = self.gate.clone();
        Box::pin(async move {
            let permit = gate
                .enter_with(options)
                .await
                .map_err(GateServiceError::Rejected)?;
            let response = inner.call(request).await.map_err(GateServiceError::Service);
            drop(permit);
            response
        })
    }
}
