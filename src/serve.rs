//! `audience serve`: the Flight SQL server over the configured tables (the
//! embedded sample when none are), until SIGINT or SIGTERM; and
//! `audience hash-password`.

use std::io::Read;
use std::sync::Arc;

use audience_engine::{Engine, EngineConfig};
use audience_flight_server::{
    Role, ServerConfig, SharedEngine, UserConfig, hash_password, random_handle,
};

use crate::cli::ServeArgs;
use crate::error::CliError;

pub(crate) fn run(args: ServeArgs) -> Result<(), CliError> {
    let config = crate::query::engine_config(&args.engine)?;
    let mut server = match &args.engine.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::default(),
    };
    server.apply_env(std::env::vars())?;
    if let Some(addr) = &args.addr {
        server.addr = addr.clone();
    }
    if let Some(limit) = args.query_timeout {
        server.query_timeout = format!("{}ms", limit.as_millis());
    }
    let first_login = first_admin(&mut server)?;
    server.validate()?;
    audience_engine::idle_memory::start_purger(std::time::Duration::from_millis(500));
    crate::query::runtime()?.block_on(serve(config, server, first_login))
}

/// With no users configured, an `admin` with a random password for this run.
fn first_admin(server: &mut ServerConfig) -> Result<Option<(String, String)>, CliError> {
    if !server.users.is_empty() {
        return Ok(None);
    }
    let password: String = random_handle().chars().take(20).collect();
    server.users.push(UserConfig {
        name: "admin".into(),
        role: Role::Admin,
        password_hash: hash_password(&password).map_err(CliError::internal)?,
    });
    Ok(Some(("admin".into(), password)))
}

async fn serve(
    config: EngineConfig,
    server_config: ServerConfig,
    first_login: Option<(String, String)>,
) -> Result<(), CliError> {
    let engine: SharedEngine = Arc::new(Engine::start(&config).await?);
    let listener = tokio::net::TcpListener::bind(&server_config.addr)
        .await
        .map_err(|e| CliError::user(format!("cannot listen on {}: {e}", server_config.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::internal(format!("cannot read the listening address: {e}")))?;
    audience_flight_server::check_transport(&server_config, addr)?;
    let tls = server_config.tls.enabled();
    print_welcome(&server_config, &addr.to_string(), tls, first_login.as_ref());

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.changed().await;
        }
    };
    let grace = server_config.shutdown_timeout();
    let mut server = tokio::spawn(async move {
        audience_flight_server::serve(engine, &server_config, listener, shutdown).await
    });
    let finished = tokio::select! {
        finished = &mut server => finished,
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("shutting down: letting in-flight queries finish (up to {grace:?})");
            let _ = stop.send(true);
            match tokio::time::timeout(grace, &mut server).await {
                Ok(finished) => finished,
                Err(_) => {
                    tracing::warn!("queries still running after {grace:?}; cancelling them");
                    server.abort();
                    return Ok(());
                }
            }
        }
    };
    finished.map_err(|e| CliError::internal(format!("the server task failed: {e}")))??;
    tracing::info!("server stopped");
    Ok(())
}

async fn shutdown_signal() -> Result<(), CliError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::internal(format!("cannot watch SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    Ok(())
}

/// Where the server listens and how to connect: a Python (ADBC) snippet that
/// runs as printed, and a JDBC URL.
fn print_welcome(
    server: &ServerConfig,
    addr: &str,
    tls: bool,
    first_login: Option<&(String, String)>,
) {
    let scheme = if tls { "grpc+tls" } else { "grpc" };
    let (user, password) = match first_login {
        Some((user, password)) => (user.clone(), password.clone()),
        None => (server.users[0].name.clone(), "…".to_string()),
    };
    println!("Audience Flight SQL server listening on {scheme}://{addr}");
    if first_login.is_some() {
        println!(
            "user '{user}' (role admin), password '{password}': made for this run only; \
             add [[server.users]] to the config to keep users"
        );
    }
    println!();
    println!("Python (pip install adbc-driver-flightsql pyarrow):");
    println!();
    println!("    import adbc_driver_flightsql.dbapi as flight_sql");
    println!(
        "    conn = flight_sql.connect(\"{scheme}://{addr}\", db_kwargs={{\"username\": \"{user}\", \"password\": \"{password}\"}}, autocommit=True)"
    );
    println!(
        "    cur = conn.cursor(); cur.execute(\"SELECT event, count(*) AS events FROM events GROUP BY event ORDER BY events DESC\"); print(cur.fetchall())"
    );
    println!();
    println!(
        "JDBC: jdbc:arrow-flight-sql://{addr}?useEncryption={tls}&user={user}&password={password}"
    );
    println!();
}

/// `audience hash-password`: reads a password from stdin, prints its PHC hash.
pub(crate) fn hash_password_command() -> Result<(), CliError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::user(format!("cannot read the password from stdin: {e}")))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(CliError::user(
            "no password on stdin: pipe one in, e.g. `printf %s 'secret' | audience hash-password`",
        ));
    }
    println!("{}", hash_password(password).map_err(CliError::internal)?);
    Ok(())
}
