//! The tenant's client of the gateway protocol: login, hello, repositories, subtenants, backup
//! policies and their status, and an agent's calls (its policy, heartbeat, session reports).
//! The data calls go through [`super::remote::RemoteStore`].

use super::{ClientError, SpClient};
use cloudkeep_api::policy::{AgentHeartbeat, AgentReport, ComputerStatus, PolicyDoc};
use cloudkeep_api::{Hello, LoginResponse, TenantView};
use cloudkeep_api::{NewSubtenant, RepoInfo, SubtenantChange};

/// A connection to a gateway as a tenant, pinned to one certificate.
#[derive(Debug, Clone)]
pub struct TenantClient(SpClient);

impl TenantClient {
    /// A client for `address` accepting only the certificate `fingerprint`.
    pub fn new(address: &str, fingerprint: &str) -> Result<Self, ClientError> {
        Ok(Self(SpClient::new(address, fingerprint)?))
    }

    /// The gateway address.
    pub fn address(&self) -> &str {
        self.0.address()
    }

    /// The connection underneath, for the calls other modules add.
    pub(crate) fn sp(&self) -> &SpClient {
        &self.0
    }

    /// `hello`.
    pub async fn hello(&self) -> Result<Hello, ClientError> {
        self.0.hello().await
    }

    /// The certificate the gateway announces it will serve next, checked against the pinned
    /// one (its fingerprint); `None` when none is announced.
    pub async fn next_cert(&self) -> Result<Option<String>, ClientError> {
        match self.0.get::<cloudkeep_api::NextCert>("/v1/cert/next").await {
            Ok(next) => crate::tls::verify_announcement(&next, self.0.pin()).map(Some),
            Err(ClientError::Api {
                code: cloudkeep_api::ErrorCode::NotFound,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Logs in; keeps the session in this client.
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<LoginResponse, ClientError> {
        let resp: LoginResponse = self
            .0
            .call(
                reqwest::Method::POST,
                "/v1/login",
                Some(&cloudkeep_api::LoginRequest {
                    user: user.to_owned(),
                    password: password.to_owned(),
                }),
            )
            .await?;
        self.0.set_token(resp.token.clone());
        Ok(resp)
    }

    /// The account's cloud repositories.
    pub async fn repos(&self) -> Result<Vec<RepoInfo>, ClientError> {
        self.0.get("/v1/repos").await
    }

    /// The tenant's subtenants.
    pub async fn subtenants(&self) -> Result<Vec<TenantView>, ClientError> {
        self.0.get("/v1/subtenants").await
    }

    /// Creates a subtenant with a quota carved from the tenant's.
    pub async fn add_subtenant(&self, sub: &NewSubtenant) -> Result<TenantView, ClientError> {
        self.0
            .call(reqwest::Method::POST, "/v1/subtenants", Some(sub))
            .await
    }

    /// Changes a subtenant's quota, state or password.
    pub async fn set_subtenant(
        &self,
        name: &str,
        change: &SubtenantChange,
    ) -> Result<TenantView, ClientError> {
        self.0
            .call(
                reqwest::Method::PUT,
                &format!("/v1/subtenants/{name}"),
                Some(change),
            )
            .await
    }

    /// Deletes a subtenant.
    pub async fn delete_subtenant(&self, name: &str) -> Result<(), ClientError> {
        self.0
            .call::<(), ()>(
                reqwest::Method::DELETE,
                &format!("/v1/subtenants/{name}"),
                None,
            )
            .await
    }

    /// Publishes a policy (the gateway raises its revision when it changed).
    pub async fn put_policy(&self, doc: &PolicyDoc) -> Result<PolicyDoc, ClientError> {
        self.0
            .call(
                reqwest::Method::PUT,
                &format!("/v1/policies/{}", doc.id),
                Some(doc),
            )
            .await
    }

    /// Forgets a published policy.
    pub async fn delete_policy(&self, id: &str) -> Result<(), ClientError> {
        self.0
            .call::<(), ()>(reqwest::Method::DELETE, &format!("/v1/policies/{id}"), None)
            .await
    }

    /// The computers of a policy with what their agents reported.
    pub async fn policy_status(&self, id: &str) -> Result<Vec<ComputerStatus>, ClientError> {
        self.0.get(&format!("/v1/policies/{id}/status")).await
    }

    /// The sessions a computer's agent reported, newest first.
    pub async fn computer_sessions(
        &self,
        id: &str,
        computer: &str,
    ) -> Result<Vec<AgentReport>, ClientError> {
        self.0
            .get(&format!("/v1/policies/{id}/computers/{computer}/sessions"))
            .await
    }

    /// An agent's policy, as its tenant last published it.
    pub async fn agent_policy(&self) -> Result<PolicyDoc, ClientError> {
        self.0.get("/v1/agent/policy").await
    }

    /// An agent says which revision it applies and when it runs next.
    pub async fn agent_heartbeat(&self, beat: &AgentHeartbeat) -> Result<(), ClientError> {
        self.0
            .call(reqwest::Method::POST, "/v1/agent/heartbeat", Some(beat))
            .await
    }

    /// An agent reports a session.
    pub async fn agent_report(&self, report: &AgentReport) -> Result<(), ClientError> {
        self.0
            .call(reqwest::Method::POST, "/v1/agent/sessions", Some(report))
            .await
    }

    /// Tells the gateway how a run of a job went (results, never content).
    pub async fn report_run(
        &self,
        report: &cloudkeep_api::health::RunReport,
    ) -> Result<(), ClientError> {
        self.0
            .call(reqwest::Method::POST, "/v1/health", Some(report))
            .await
    }

    /// Orders a restore for a computer of policy `id` (its agent carries it out).
    pub async fn order_restore(
        &self,
        id: &str,
        order: &cloudkeep_api::policy::RestoreOrderRequest,
    ) -> Result<cloudkeep_api::policy::RestoreOrder, ClientError> {
        self.0
            .call(
                reqwest::Method::POST,
                &format!("/v1/policies/{id}/restores"),
                Some(order),
            )
            .await
    }

    /// The restores ordered for the computers of policy `id`, newest first.
    pub async fn restore_orders(
        &self,
        id: &str,
    ) -> Result<Vec<cloudkeep_api::policy::RestoreOrder>, ClientError> {
        self.0.get(&format!("/v1/policies/{id}/restores")).await
    }

    /// An agent's orders still to carry out.
    pub async fn agent_orders(
        &self,
    ) -> Result<Vec<cloudkeep_api::policy::RestoreOrder>, ClientError> {
        self.0.get("/v1/agent/restores").await
    }

    /// An agent's progress on one of its orders.
    pub async fn agent_order_update(
        &self,
        order: i64,
        update: &cloudkeep_api::policy::RestoreOrderUpdate,
    ) -> Result<(), ClientError> {
        self.0
            .call(
                reqwest::Method::PUT,
                &format!("/v1/agent/restores/{order}"),
                Some(update),
            )
            .await
    }
}
