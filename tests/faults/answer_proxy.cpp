// A loopback HTTP/1.1 proxy for the fault tests that loses answers: in
// front of a metrics server, it forwards every request, but of the writes
// (POST /update...) it drops some before forwarding (a cut connection: not
// applied), swallows the answer of others after the server applied them (the
// lost answer an idempotency key exists for), and cuts others halfway
// through the answer. Reads (POST /value/ and the rest) always pass, so the
// generator's read-back sees the server as it is.
//
//   answer_proxy --upstream PORT [--swallow 0.15] [--cut 0.05] [--cut-answer 0.05]
//                [--seed N] [--stats FILE]
//
// Prints "port N" (its own, a free one) on stdout once listening; after
// SIGUSR1 it forwards everything faithfully (so a test can let its client
// drain); on SIGTERM/SIGINT writes "forwarded=.. cut=.. swallowed=.. cut_answers=.." to
// the stats file and exits 0. Content-Length framing only (the server's).
// One thread per connection; every socket wait is bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_calm = 0;
void on_signal(int) {
  g_stop = 1;
}
void on_calm(int) {
  g_calm = 1;
}

struct Config {
  int upstream = 0;
  double cut = 0.05;
  double swallow = 0.15;
  double cut_answer = 0.05;
  unsigned seed = 1;
  std::string stats;
};

std::atomic<unsigned long> g_forwarded{0}, g_cut{0}, g_swallowed{0}, g_cut_answers{0};

constexpr int kIoTimeoutMs = 30000;
constexpr std::size_t kMaxMessage = 64 << 20;

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Appends what arrives within the timeout; false on EOF, error or timeout.
bool recv_some(int fd, std::string& buf) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, kIoTimeoutMs) <= 0) return false;
  char chunk[16384];
  const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
  if (n <= 0) return false;
  buf.append(chunk, static_cast<std::size_t>(n));
  return buf.size() <= kMaxMessage;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Message {
  std::string bytes;  // head and body
  std::string first_line;
  bool close = false;  // "Connection: close"
};

// Takes one Content-Length framed message from the front of buf, reading
// more from fd as needed; false when the peer went away first.
bool read_message(int fd, std::string& buf, Message& out) {
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!recv_some(fd, buf)) return false;
  }
  const std::string head = lower(std::string_view(buf).substr(0, end + 2));
  out.first_line = buf.substr(0, buf.find("\r\n"));
  std::size_t length = 0;
  if (const auto at = head.find("\r\ncontent-length:"); at != std::string::npos) {
    std::size_t from = at + 17;
    while (from < head.size() && head[from] == ' ')
      ++from;
    std::from_chars(head.data() + from, head.data() + head.size(), length);
  }
  out.close = head.find("\r\nconnection: close") != std::string::npos;
  const std::size_t total = end + 4 + length;
  if (total > kMaxMessage) return false;
  while (buf.size() < total) {
    if (!recv_some(fd, buf)) return false;
  }
  out.bytes = buf.substr(0, total);
  buf.erase(0, total);
  return true;
}

int connect_upstream(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void serve(int client, const Config& config, unsigned seed) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<double> roll(0.0, 1.0);
  int upstream = -1;
  std::string from_client, from_upstream;
  Message request, answer;
  while (g_stop == 0 && read_message(client, from_client, request)) {
    const bool write = request.first_line.starts_with("POST /update");
    const double r = write && g_calm == 0 ? roll(random) : 1.0;
    if (r < config.cut) {
      ++g_cut;  // never forwarded: not applied
      break;
    }
    if (upstream < 0) {
      upstream = connect_upstream(config.upstream);
      from_upstream.clear();
    }
    if (upstream < 0 || !send_all(upstream, request.bytes) ||
        !read_message(upstream, from_upstream, answer)) {
      break;  // the server went away: the client sees a cut connection
    }
    if (r < config.cut + config.swallow) {
      ++g_swallowed;  // applied, and the answer is lost
      break;
    }
    if (r < config.cut + config.swallow + config.cut_answer) {
      ++g_cut_answers;
      send_all(client, std::string_view(answer.bytes).substr(0, answer.bytes.size() / 2));
      break;
    }
    ++g_forwarded;
    if (!send_all(client, answer.bytes)) break;
    if (answer.close) {
      ::close(upstream);
      upstream = -1;
    }
  }
  if (upstream >= 0) ::close(upstream);
  ::close(client);
}

bool parse_double(const char* text, double& out) {
  char* end = nullptr;
  out = std::strtod(text, &end);
  return end != text && *end == '\0' && out >= 0 && out <= 1;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    bool ok = true;
    if (flag == "--upstream") {
      config.upstream = std::atoi(value);
    } else if (flag == "--swallow") {
      ok = parse_double(value, config.swallow);
    } else if (flag == "--cut") {
      ok = parse_double(value, config.cut);
    } else if (flag == "--cut-answer") {
      ok = parse_double(value, config.cut_answer);
    } else if (flag == "--seed") {
      config.seed = static_cast<unsigned>(std::strtoul(value, nullptr, 10));
    } else if (flag == "--stats") {
      config.stats = value;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "answer_proxy: bad argument %s %s\n", argv[i], value);
      return 2;
    }
  }
  if (config.upstream <= 0 || config.upstream > 65535) {
    std::fprintf(stderr, "answer_proxy: --upstream PORT is needed\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  struct sigaction calm {};
  calm.sa_handler = on_calm;
  ::sigaction(SIGUSR1, &calm, nullptr);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1024) != 0) {
    std::perror("answer_proxy: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("port %u\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  unsigned connections = 0;
  while (g_stop == 0) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Detached: the process ends at SIGTERM with whatever is still open.
    std::thread(serve, client, std::cref(config), config.seed * 7919u + ++connections).detach();
  }
  if (!config.stats.empty()) {
    std::ofstream out(config.stats);
    out << "forwarded=" << g_forwarded << " cut=" << g_cut << " swallowed=" << g_swallowed
        << " cut_answers=" << g_cut_answers << "\n";
  }
  return 0;
}
