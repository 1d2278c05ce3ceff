//! A minimal synchronous netlink request/response loop (netlink(7)).
//!
//! Sends one request and collects the replies: the inner messages of a dump
//! until `NLMSG_DONE`, or the acknowledgement of a change. A socket belongs
//! to the network namespace of the thread that opened it, which is how the
//! rest of this module talks to a jail's namespace (see `netns::run_in`).
//! It does not subscribe to multicast groups or keep any cache.

use std::io;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};

/// A failed netlink exchange, naming what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink {op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("netlink {op}: cannot decode reply: {reason}")]
    Decode { op: String, reason: String },
}

impl NetlinkError {
    /// The errno the kernel answered with, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetlinkError::Io { source, .. } => source.raw_os_error(),
            NetlinkError::Decode { .. } => None,
        }
    }
}

impl From<NetlinkError> for crate::os::OsError {
    fn from(e: NetlinkError) -> Self {
        match e {
            NetlinkError::Io { op, source } => crate::os::OsError::Sys {
                op: format!("netlink {op}"),
                source,
            },
            d @ NetlinkError::Decode { .. } => crate::os::OsError::Sys {
                op: d.to_string(),
                source: io::Error::new(io::ErrorKind::InvalidData, "bad netlink reply"),
            },
        }
    }
}

/// A netlink socket of one protocol, bound in the namespace of the thread
/// that opened it.
pub struct NlSocket {
    sock: Socket,
    seq: u32,
}

impl NlSocket {
    /// Opens a socket for `protocol` (`netlink_sys::constants::NETLINK_*`).
    pub fn open(protocol: isize) -> Result<Self, NetlinkError> {
        let io = |source| NetlinkError::Io {
            op: "open socket".into(),
            source,
        };
        let mut sock = Socket::new(protocol).map_err(io)?;
        sock.bind_auto().map_err(io)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        Ok(NlSocket { sock, seq: 0 })
    }

    /// Sends `msg` with `flags` (NLM_F_REQUEST is added) and returns the
    /// inner messages of the reply. With NLM_F_DUMP it reads until
    /// NLMSG_DONE; otherwise NLM_F_ACK is added and it reads until the ack.
    pub fn request<I>(&mut self, op: &str, msg: I, flags: u16) -> Result<Vec<I>, NetlinkError>
    where
        I: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
    {
        let dump = flags & netlink_packet_core::NLM_F_DUMP == netlink_packet_core::NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        let io = |source| NetlinkError::Io {
            op: op.to_string(),
            source,
        };
        self.sock.send(&buf, 0).map_err(io)?;

        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(io)?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<I>::deserialize(&data[offset..]).map_err(|e| NetlinkError::Decode {
                    op: op.to_string(),
                    reason: e.to_string(),
                })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(NetlinkError::Decode {
                        op: op.to_string(),
                        reason: "zero-length message".into(),
                    });
                }
                // why: replies to an earlier request that timed out or was
                // abandoned must not be mistaken for this one.
                if reply.header.sequence_number != self.seq {
                    offset += (len + 3) & !3;
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(_) => return Err(io(e.to_io())),
                    },
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
                offset += (len + 3) & !3;
            }
        }
    }
}
