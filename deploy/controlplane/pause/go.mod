// The real node's pod sandbox ("pause") program: it holds a pod's namespaces and reaps zombies.
// Built locally so the node needs no registry (registry.k8s.io/pause is what kind pulls).
module shipml.local/controlplane/pause

go 1.26.0
