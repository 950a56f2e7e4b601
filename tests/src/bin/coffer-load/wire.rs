//! The load phases' HTTP/1.1 client: one keep-alive connection per
//! worker, each request written out as bytes and each answer read by its
//! length, as wrk does. The load generator shares the machine with the
//! servers it measures, so what it spends per request is taken from them;
//! a general-purpose client (connection pool, URL parsing, JSON encoding
//! per request) spent several times what wrk does.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest answer head read.
const MAX_HEAD: usize = 64 * 1024;

/// One kept-alive connection to a server.
pub struct Connection {
    stream: TcpStream,
    host: String,
    request: Vec<u8>,
    /// Bytes read past the answer before (none, as requests are not
    /// pipelined, but kept rather than lost).
    read: Vec<u8>,
}

impl Connection {
    /// Connects to `base` (`http://host:port`).
    pub async fn open(base: &str) -> Result<Connection> {
        let host = base
            .strip_prefix("http://")
            .with_context(|| format!("{base} is not an http:// address"))?
            .trim_end_matches('/')
            .to_owned();
        let stream = TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            host,
            request: Vec::with_capacity(1024),
            read: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its whole answer; returns its status.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<u16> {
        self.request.clear();
        let head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        self.request.extend_from_slice(head.as_bytes());
        for (name, value) in headers {
            self.request
                .extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if let Some(body) = body {
            let length = format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
            self.request.extend_from_slice(length.as_bytes());
        }
        self.request.extend_from_slice(b"\r\n");
        if let Some(body) = body {
            self.request.extend_from_slice(body);
        }
        self.stream.write_all(&self.request).await?;
        self.answer().await
    }

    /// Reads one answer: its head, then its body by `Content-Length` or
    /// chunk by chunk.
    async fn answer(&mut self) -> Result<u16> {
        let (status, head_len, length) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = response.parse(&self.read)? {
                let status = response.code.context("an answer without a status")?;
                let length = body_length(response.headers)?;
                break (status, head_len, length);
            }
            if self.read.len() > MAX_HEAD {
                bail!("an answer head over {MAX_HEAD} bytes");
            }
            self.fill().await?;
        };
        self.read.drain(..head_len);
        match length {
            Length::Known(length) => self.skip(length).await?,
            Length::Chunked => loop {
                let size = self.chunk_size().await?;
                self.skip(size + 2).await?;
                if size == 0 {
                    break;
                }
            },
        }
        Ok(status)
    }

    /// The size of the next chunk, its line consumed.
    async fn chunk_size(&mut self) -> Result<usize> {
        loop {
            if let Some(end) = self.read.windows(2).position(|w| w == b"\r\n") {
                let line = std::str::from_utf8(&self.read[..end])?;
                let size = line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16)?;
                self.read.drain(..end + 2);
                return Ok(size);
            }
            self.fill().await?;
        }
    }

    /// Consumes `count` bytes of answer.
    async fn skip(&mut self, count: usize) -> Result<()> {
        while self.read.len() < count {
            self.fill().await?;
        }
        self.read.drain(..count);
        Ok(())
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        self.read.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

/// How an answer's body is delimited.
enum Length {
    Known(usize),
    Chunked,
}

fn body_length(headers: &[httparse::Header<'_>]) -> Result<Length> {
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            return Ok(Length::Known(std::str::from_utf8(header.value)?.parse()?));
        }
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Ok(Length::Chunked);
        }
    }
    Ok(Length::Known(0))
}
