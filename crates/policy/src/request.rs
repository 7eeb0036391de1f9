//! The evaluation input: the request and its context, borrowed from the caller.

use aegis_contracts::{EvaluationContext, EvaluationRequest, PolicyType};
use serde_json::{Map, Value};

/// The facts a decision is taken on, borrowed from the caller (nothing is copied): from an
/// [`EvaluationContext`] (`Context::from`) or built field by field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// `context.userId`.
    pub user_id: Option<&'a str>,
    /// `context.role`.
    pub role: Option<&'a str>,
    /// `context.ipAddress`.
    pub ip_address: Option<&'a str>,
    /// `context.userAgent`.
    pub user_agent: Option<&'a str>,
    /// `context.metadata`.
    pub metadata: Option<&'a Map<String, Value>>,
}

/// One evaluation request, borrowed from the caller: from an [`EvaluationRequest`]
/// (`Request::from`) or built field by field.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Only policies of this type are candidates.
    pub policy_type: PolicyType,
    /// Matched against each policy's `actions`.
    pub action: &'a str,
    /// Matched against each policy's `resources`.
    pub resource: &'a str,
    /// Matched against each policy's `conditions`.
    pub context: Context<'a>,
}

impl<'a> From<&'a EvaluationContext> for Context<'a> {
    fn from(context: &'a EvaluationContext) -> Self {
        Context {
            user_id: context.user_id.as_deref(),
            role: context.role.as_deref(),
            ip_address: context.ip_address.as_deref(),
            user_agent: context.user_agent.as_deref(),
            metadata: context.metadata.as_ref(),
        }
    }
}

impl<'a> From<&'a EvaluationRequest> for Request<'a> {
    fn from(request: &'a EvaluationRequest) -> Self {
        Request {
            policy_type: request.policy_type,
            action: &request.action,
            resource: &request.resource,
            context: Context::from(&request.context),
        }
    }
}
