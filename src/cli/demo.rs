//! `cpgate demo`.

pub async fn demo() -> anyhow::Result<()> {
    anyhow::bail!("demo not built yet")
}
