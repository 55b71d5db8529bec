//! Cloud replication's calls: the SP admin's cloud hosts, hardware plans and every tenant's
//! replicas (started on a tenant's behalf), a tenant's plans and replicas (cycles, failover),
//! and [`HostClient`], a cloud host's own connection (login with failover over the
//! provider's gateways, then its heartbeat carrying what it has).

use super::tenant::TenantClient;
use super::{ClientError, SpClient};
use cloudkeep_api::handoff::Handoff;
use cloudkeep_api::replication::{
    AddedHost, CycleReport, Escrow, FAILBACK_HEADER, FailbackHead, FailoverRequest, HostFacts,
    HostView, KEY_HEADER, NewHost, NewReplica, PlanSpec, PlanView, ReplicaView, TenantPlan,
};
use cloudkeep_api::{LoginRequest, LoginResponse};

/// A name as one segment of a URL path.
fn segment(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

impl SpClient {
    /// The cloud hosts.
    pub async fn hosts(&self) -> Result<Vec<HostView>, ClientError> {
        self.get("/v1/admin/hosts").await
    }

    /// Adds cloud host `name`: the host and its connection details, password included (the
    /// gateway keeps only its hash: hand them over now).
    pub async fn add_host(&self, name: &str) -> Result<(HostView, Handoff), ClientError> {
        let added: AddedHost = self
            .call(
                reqwest::Method::POST,
                "/v1/admin/hosts",
                Some(&NewHost { name: name.into() }),
            )
            .await?;
        let handoff = self
            .handoff_for(added.host.name.clone(), Some(added.password))
            .await?;
        Ok((added.host, handoff))
    }

    /// Removes a cloud host no plan is on; the hosts left.
    pub async fn remove_host(&self, name: &str) -> Result<Vec<HostView>, ClientError> {
        self.call::<(), _>(
            reqwest::Method::DELETE,
            &format!("/v1/admin/hosts/{}", segment(name)),
            None,
        )
        .await
    }

    /// The hardware plans with their tenants.
    pub async fn plans(&self) -> Result<Vec<PlanView>, ClientError> {
        self.get("/v1/admin/plans").await
    }

    /// Makes a hardware plan (checked against what its host reported).
    pub async fn add_plan(&self, plan: &PlanSpec) -> Result<PlanView, ClientError> {
        self.call(reqwest::Method::POST, "/v1/admin/plans", Some(plan))
            .await
    }

    /// Removes a hardware plan no tenant has; the plans left.
    pub async fn remove_plan(&self, name: &str) -> Result<Vec<PlanView>, ClientError> {
        self.call::<(), _>(
            reqwest::Method::DELETE,
            &format!("/v1/admin/plans/{}", segment(name)),
            None,
        )
        .await
    }

    /// Every tenant's replicas.
    pub async fn replicas(&self) -> Result<Vec<ReplicaView>, ClientError> {
        self.get("/v1/admin/replicas").await
    }

    /// Starts tenant `tenant`'s replica on its behalf, with the key it lets the SP hold.
    pub async fn replica_failover(
        &self,
        tenant: &str,
        name: &str,
        req: &FailoverRequest,
    ) -> Result<ReplicaView, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!(
                "/v1/admin/replicas/{}/{}/failover",
                segment(tenant),
                segment(name)
            ),
            Some(req),
        )
        .await
    }

    /// Gives tenant `login` hardware plan `plan` (`subscribe`), or takes it away.
    pub async fn set_subscription(
        &self,
        plan: &str,
        login: &str,
        subscribe: bool,
    ) -> Result<PlanView, ClientError> {
        let method = if subscribe {
            reqwest::Method::PUT
        } else {
            reqwest::Method::DELETE
        };
        self.call::<(), _>(
            method,
            &format!(
                "/v1/admin/plans/{}/tenants/{}",
                segment(plan),
                segment(login)
            ),
            None,
        )
        .await
    }
}

impl TenantClient {
    /// The hardware plans the tenant has at this provider, with their use.
    pub async fn replication_plans(&self) -> Result<Vec<TenantPlan>, ClientError> {
        self.sp().get("/v1/replication/plans").await
    }

    /// The tenant's replicas at this provider.
    pub async fn replicas(&self) -> Result<Vec<ReplicaView>, ClientError> {
        self.sp().get("/v1/replicas").await
    }

    /// One replica.
    pub async fn replica(&self, name: &str) -> Result<ReplicaView, ClientError> {
        self.sp()
            .get(&format!("/v1/replicas/{}", segment(name)))
            .await
    }

    /// Makes a replica (its encrypted disks on the plan's host).
    pub async fn add_replica(&self, replica: &NewReplica) -> Result<ReplicaView, ClientError> {
        self.sp()
            .call(reqwest::Method::POST, "/v1/replicas", Some(replica))
            .await
    }

    /// Removes a replica and its disks at the host; the replicas left.
    pub async fn remove_replica(&self, name: &str) -> Result<Vec<ReplicaView>, ClientError> {
        self.sp()
            .call::<(), _>(
                reqwest::Method::DELETE,
                &format!("/v1/replicas/{}", segment(name)),
                None,
            )
            .await
    }

    /// Lets the SP hold the replica's key again (`Some`), or revokes it (`None`).
    pub async fn set_escrow(
        &self,
        name: &str,
        key: Option<&str>,
    ) -> Result<ReplicaView, ClientError> {
        let path = format!("/v1/replicas/{}/escrow", segment(name));
        match key {
            Some(key) => {
                self.sp()
                    .call(
                        reqwest::Method::PUT,
                        &path,
                        Some(&Escrow {
                            key: key.to_owned(),
                        }),
                    )
                    .await
            }
            None => {
                self.sp()
                    .call::<(), _>(reqwest::Method::DELETE, &path, None)
                    .await
            }
        }
    }

    /// Starts the replica from a point with its key (a test failover or a failover).
    pub async fn replica_failover(
        &self,
        name: &str,
        key: &str,
        req: &FailoverRequest,
    ) -> Result<ReplicaView, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.sp()
            .send_raw(
                reqwest::Method::POST,
                &format!("/v1/replicas/{}/failover", segment(name)),
                &[(KEY_HEADER, key), ("content-type", "application/json")],
                reqwest::Body::from(body),
                Some(std::time::Duration::from_secs(300)),
            )
            .await
    }

    /// Ends a test failover or undoes a failover (`permanent`: makes a failover permanent).
    pub async fn replica_end(
        &self,
        name: &str,
        permanent: bool,
    ) -> Result<ReplicaView, ClientError> {
        let what = if permanent { "permanent" } else { "undo" };
        self.sp()
            .call::<(), _>(
                reqwest::Method::POST,
                &format!("/v1/replicas/{}/{what}", segment(name)),
                None,
            )
            .await
    }

    /// Fails the replica back: `fingerprints` (of the disks it goes back onto) sent; the
    /// replica's points now, and the blocks that differ as a frame stream, read as it comes.
    pub async fn replica_failback(
        &self,
        name: &str,
        key: &str,
        fingerprints: Vec<u8>,
    ) -> Result<(FailbackHead, FailbackStream), ClientError> {
        let resp = self
            .sp()
            .send_streaming(
                reqwest::Method::POST,
                &format!("/v1/replicas/{}/failback", segment(name)),
                &[(KEY_HEADER, key)],
                reqwest::Body::from(fingerprints),
            )
            .await?;
        let head: FailbackHead = resp
            .headers()
            .get(FAILBACK_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok())
            .ok_or_else(|| {
                ClientError::Protocol("the provider's failback answer has no head".into())
            })?;
        let stream = futures_util::StreamExt::map(resp.bytes_stream(), |chunk| {
            chunk.map_err(|e| ClientError::Protocol(format!("the failback was cut off: {e}")))
        });
        Ok((head, Box::pin(stream)))
    }

    /// Says every block of the failback is written: replication resumes.
    pub async fn replica_failback_done(&self, name: &str) -> Result<ReplicaView, ClientError> {
        self.sp()
            .call::<(), _>(
                reqwest::Method::POST,
                &format!("/v1/replicas/{}/failback/done", segment(name)),
                None,
            )
            .await
    }

    /// Joins the tenant's network `network` of hardware plan `plan` at layer 2: the tunnel a
    /// network extension appliance carries Ethernet frames in (each its 4-byte big-endian
    /// length, then its bytes).
    pub async fn join_network(
        &self,
        plan: &str,
        network: u8,
    ) -> Result<reqwest::Upgraded, ClientError> {
        self.sp()
            .upgrade(
                &format!("/v1/networks/{}/{network}/join", segment(plan)),
                cloudkeep_api::replication::L2_UPGRADE,
            )
            .await
    }

    /// Whether watched port `port` of the running replica answers.
    pub async fn replica_probe(
        &self,
        name: &str,
        port: u16,
    ) -> Result<cloudkeep_api::replication::ProbeAnswer, ClientError> {
        self.sp()
            .get(&format!("/v1/replicas/{}/probe?port={port}", segment(name)))
            .await
    }

    /// The running replica's serial console (its end) and how it runs.
    pub async fn replica_console(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.sp()
            .get(&format!("/v1/replicas/{}/console", segment(name)))
            .await
    }

    /// Sends one cycle's block stream (`blocks`, made as the disks are read) with the
    /// replica's key; the replica point the host made. No two-minute limit: a first cycle sends
    /// whole disks.
    pub async fn replica_cycle<S>(
        &self,
        name: &str,
        key: &str,
        blocks: S,
    ) -> Result<CycleReport, ClientError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
    {
        let body = reqwest::Body::wrap_stream(blocks);
        self.sp()
            .send_raw(
                reqwest::Method::PUT,
                &format!("/v1/replicas/{}/cycle", segment(name)),
                &[(KEY_HEADER, key)],
                body,
                None,
            )
            .await
    }
}

/// A failback's blocks as they arrive.
pub type FailbackStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, ClientError>> + Send>>;

/// A cloud host's connection to its gateways.
#[derive(Debug, Clone)]
pub struct HostClient {
    client: SpClient,
}

impl HostClient {
    /// Logs in as the host `details` name, trying the provider's gateways in order.
    pub async fn log_in(details: &Handoff) -> Result<Self, ClientError> {
        let Some(password) = &details.password else {
            return Err(ClientError::Protocol(
                "the host's connection details have no password; add the host again to get new ones"
                    .into(),
            ));
        };
        let attempt = |address: String| async move {
            let mut client = SpClient::new(&address, &details.fingerprint)?;
            let resp: LoginResponse = client
                .call(
                    reqwest::Method::POST,
                    "/v1/host/login",
                    Some(&LoginRequest {
                        user: details.user.clone(),
                        password: password.clone(),
                    }),
                )
                .await?;
            client.set_token(resp.token);
            Ok(Self { client })
        };
        match super::failover::first_answering(&details.addresses, attempt).await {
            Some(answer) => answer,
            None => Err(ClientError::Protocol(
                "the host's connection details name no gateway".into(),
            )),
        }
    }

    /// The gateway this host talks to.
    pub fn address(&self) -> &str {
        self.client.address()
    }

    /// Tells the gateways where this host listens for them (its address, certificate and
    /// relay key).
    pub async fn set_endpoint(
        &self,
        endpoint: &cloudkeep_api::replication::HostEndpoint,
    ) -> Result<(), ClientError> {
        self.client
            .call(reqwest::Method::PUT, "/v1/host/endpoint", Some(endpoint))
            .await
    }

    /// The heartbeat: what the host has now.
    pub async fn report(&self, facts: &HostFacts) -> Result<(), ClientError> {
        self.client
            .call(reqwest::Method::PUT, "/v1/host/facts", Some(facts))
            .await
    }
}
