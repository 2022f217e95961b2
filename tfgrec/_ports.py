"""Whether a TCP port can be bound, probed as a gRPC server binds it (imports nothing heavy).

The probe sets SO_REUSEADDR, as gRPC and TF Serving do: a port whose last server stopped a moment
ago still has connections in TIME_WAIT, and a plain bind would call it busy although a new server
binds it. A port with a listening socket on it is busy either way.
"""
import errno
import socket


def in_use(host: str, port: int) -> bool:
  """Whether binding host:port fails with EADDRINUSE (port 0, any free port, never is)."""
  if port == 0:
    return False
  try:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
  except OSError:
    return False
  for family, kind, proto, _, address in infos:
    with socket.socket(family, kind, proto) as probe:
      probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      try:
        probe.bind(address)
      except OSError as e:
        if e.errno == errno.EADDRINUSE:
          return True
  return False
