// Resolving the rendezvous from torchrun's environment, and where each worker binds Gloo: an
// interface if one is named, loopback when every worker is on this host or the master is a
// loopback address, else this host's address on the route to the master (a fake route here; the
// real lookup is also checked on loopback, and across network namespaces in MultiHostTest).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tessera/core/error.h"
#include "tessera/dist/rendezvous.h"

namespace {

using tessera::dist::choose_gloo_binding;
using tessera::dist::DistConfig;
using tessera::dist::Environment;
using tessera::dist::resolve_rendezvous;
using tessera::dist::RouteLookup;

// Two hosts joined by a link: 10.231.0.1 (rank 0's) and 10.231.0.2. `from` is the host asking;
// it records every lookup, and knows no route to anything else.
struct FakeRoutes {
  explicit FakeRoutes(std::string source) : from(std::move(source)) {}
  std::string from;
  std::vector<std::string> asked;
  RouteLookup lookup() {
    return [this](const std::string& host) {
      asked.push_back(host);
      if (host == "10.231.0.1" || host == "node0") return from;
      throw tessera::Error("no route from this host to '" + host + "' (Network is unreachable)");
    };
  }
};

// torchrun's environment for global rank `rank` on a run of `nodes` x `per_node` workers.
Environment torchrun_env(int rank, int nodes, int per_node, const std::string& master) {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(nodes * per_node)},
          {"LOCAL_RANK", std::to_string(rank % per_node)},
          {"LOCAL_WORLD_SIZE", std::to_string(per_node)},
          {"GROUP_RANK", std::to_string(rank / per_node)},
          {"GROUP_WORLD_SIZE", std::to_string(nodes)},
          {"MASTER_ADDR", master},
          {"MASTER_PORT", "29500"}};
}

}  // namespace

TEST(Rendezvous, EveryNodeBindsToItsAddressOnTheRouteToTheMaster) {
  // The master's own node: the master address is local but not loopback, so bind to it (binding
  // to 127.0.0.1 there made the other node's connections fail with "Connection refused").
  FakeRoutes node0{"10.231.0.1"};
  for (int rank : {0, 1}) {
    const auto r = resolve_rendezvous({}, torchrun_env(rank, 2, 2, "10.231.0.1"), node0.lookup());
    EXPECT_EQ(r.group.address, "10.231.0.1");
    EXPECT_EQ(r.group.iface, "");
    EXPECT_EQ(r.local_world_size, 2);
    EXPECT_NE(r.binding_reason.find("route to MASTER_ADDR=10.231.0.1"), std::string::npos)
        << r.binding_reason;
  }
  FakeRoutes node1{"10.231.0.2"};
  for (int rank : {2, 3}) {
    const auto r = resolve_rendezvous({}, torchrun_env(rank, 2, 2, "10.231.0.1"), node1.lookup());
    EXPECT_EQ(r.group.address, "10.231.0.2");
    EXPECT_EQ(r.rank, rank);
  }
  EXPECT_EQ(node1.asked, (std::vector<std::string>{"10.231.0.1", "10.231.0.1"}));
  // A host name works the same way (the lookup resolves it).
  const auto named = resolve_rendezvous({}, torchrun_env(3, 2, 2, "node0"), node1.lookup());
  EXPECT_EQ(named.group.address, "10.231.0.2");
}

TEST(Rendezvous, OneHostBindsToLoopbackWithoutLookingUpARoute) {
  FakeRoutes routes{"10.231.0.1"};
  // Every worker on this host: loopback, whatever MASTER_ADDR says.
  auto r = resolve_rendezvous({}, torchrun_env(1, 1, 2, "10.231.0.1"), routes.lookup());
  EXPECT_EQ(r.group.address, "127.0.0.1");
  // A loopback master: every node is on this machine.
  r = resolve_rendezvous({}, torchrun_env(3, 2, 2, "127.0.0.1"), routes.lookup());
  EXPECT_EQ(r.group.address, "127.0.0.1");
  r = resolve_rendezvous({}, torchrun_env(3, 2, 2, "localhost"), routes.lookup());
  EXPECT_EQ(r.group.address, "127.0.0.1");
  EXPECT_TRUE(routes.asked.empty());
  // Without LOCAL_WORLD_SIZE (workers started by hand) a non-loopback master is routed to.
  Environment env = torchrun_env(0, 1, 2, "10.231.0.1");
  env.erase("LOCAL_WORLD_SIZE");
  r = resolve_rendezvous({}, env, routes.lookup());
  EXPECT_EQ(r.local_world_size, -1);
  EXPECT_EQ(r.group.address, "10.231.0.1");
}

TEST(Rendezvous, AnInterfaceFromTheFlagOrTheEnvironmentOverridesTheChoice) {
  FakeRoutes routes{"10.231.0.2"};
  Environment env = torchrun_env(2, 2, 2, "10.231.0.1");
  env["GLOO_SOCKET_IFNAME"] = "eth1";
  auto r = resolve_rendezvous({}, env, routes.lookup());
  EXPECT_EQ(r.group.iface, "eth1");
  DistConfig config;
  config.iface = "veth0";
  r = resolve_rendezvous(config, env, routes.lookup());
  EXPECT_EQ(r.group.iface, "veth0");
  // Even to a master with no route (the interface may reach it in ways the lookup cannot see).
  env["MASTER_ADDR"] = "192.168.77.1";
  EXPECT_EQ(resolve_rendezvous(config, env, routes.lookup()).group.iface, "veth0");
  EXPECT_TRUE(routes.asked.empty());
}

TEST(Rendezvous, NoRouteToTheMasterIsAnErrorNamingItAndTheOverrides) {
  FakeRoutes routes{"10.231.0.2"};
  try {
    resolve_rendezvous({}, torchrun_env(2, 2, 2, "192.168.77.1"), routes.lookup());
    FAIL() << "expected an error";
  } catch (const tessera::UsageError& e) {
    FAIL() << "not a usage error: " << e.what();
  } catch (const tessera::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("no route from this host to '192.168.77.1'"), std::string::npos)
        << message;
    EXPECT_NE(message.find("--dist-iface"), std::string::npos) << message;
    EXPECT_NE(message.find("GLOO_SOCKET_IFNAME"), std::string::npos) << message;
  }
}

TEST(Rendezvous, MalformedLocalWorldSizeIsAUsageError) {
  FakeRoutes routes{"10.231.0.1"};
  Environment env = torchrun_env(0, 2, 2, "10.231.0.1");
  for (const char* bad : {"two", "0", "5"}) {
    env["LOCAL_WORLD_SIZE"] = bad;
    EXPECT_THROW(resolve_rendezvous({}, env, routes.lookup()), tessera::UsageError) << bad;
  }
}

TEST(Rendezvous, ChooseGlooBindingIsAPureFunctionOfItsInputs) {
  FakeRoutes routes{"10.231.0.2"};
  auto b = choose_gloo_binding("", "10.231.0.1", 4, 2, routes.lookup());
  EXPECT_EQ(b.address, "10.231.0.2");
  b = choose_gloo_binding("", "10.231.0.1", 4, 4, routes.lookup());
  EXPECT_EQ(b.address, "127.0.0.1");
  b = choose_gloo_binding("", "10.231.0.1", 1, -1, routes.lookup());  // nobody to reach
  EXPECT_EQ(b.address, "127.0.0.1");
  b = choose_gloo_binding("eth0", "10.231.0.1", 4, 2, routes.lookup());
  EXPECT_EQ(b.iface, "eth0");
  EXPECT_EQ(b.address, "");
  EXPECT_EQ(routes.asked.size(), 1u);
}

TEST(Rendezvous, TheRealRouteLookupFindsLoopbackForLoopbackAddresses) {
  EXPECT_EQ(tessera::dist::route_source_address("127.0.0.1"), "127.0.0.1");
  // Another address of the loopback range is reached from 127.0.0.1.
  EXPECT_EQ(tessera::dist::route_source_address("127.0.1.1"), "127.0.0.1");
  // File init (one host) needs no route.
  DistConfig config;
  config.init = "file:/tmp/x";
  const auto r = resolve_rendezvous(
      config, {{"RANK", "0"}, {"WORLD_SIZE", "2"}},
      [](const std::string&) -> std::string { throw tessera::Error("no lookup expected"); });
  EXPECT_EQ(r.group.address, "127.0.0.1");
}
