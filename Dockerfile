# syntax=docker/dockerfile:1
# The lakirotator daemon: a static Go binary on distroless (no shell, no
# package manager), running as the image's nonroot user. The ECS task in
# terraform/modules/rotator-service runs it with a read-only root filesystem.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/lakirotator ./cmd/lakirotator
RUN mkdir /out/state

FROM gcr.io/distroless/static-debian12:nonroot
# The rotation policies the daemon loads (config policies_dir; the Terraform
# example points it here). Build with --build-arg POLICIES_DIR=... for your own.
ARG POLICIES_DIR=policies/examples
COPY ${POLICIES_DIR}/ /etc/lakirotator/policies/
COPY --from=build /out/lakirotator /lakirotator
# The audit file's directory (config audit.file), owned by the nonroot user:
# the only writable path, mounted from a task volume (rotator-service
# audit_dir), which takes this owner. The file itself is mode 0600.
COPY --from=build --chown=65532:65532 /out/state /var/lib/lakirotator
VOLUME ["/var/lib/lakirotator"]
USER 65532:65532
# The one HTTP listener (config http.listen): API, health, metrics and the
# LakiConnect security-event receiver.
EXPOSE 8080
ENTRYPOINT ["/lakirotator"]
CMD ["serve", "--config", "/etc/lakirotator/config.yaml"]
