# nats-server built from the module proxy at pkg/go.mod's version (`make
# images`), FROM scratch; sinew's `health` verb is the healthcheck.
FROM scratch
COPY .images/bin/nats-server .images/bin/sinew /bin/
COPY --chown=65532:65532 .images/empty/ /data/
ENV PATH=/bin
USER 65532:65532
ENTRYPOINT ["/bin/nats-server"]
