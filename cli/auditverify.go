package cli

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/audit/anchor"
)

// auditVerifyFlags say where the anchor is. An auditor needs read access
// to the bucket and either the public key file or kms:Verify.
type auditVerifyFlags struct {
	bucket, prefix, publicKey, kmsKey, region, endpoint string
}

func newAuditVerifyCmd(stdio IO, g *globalFlags) *cobra.Command {
	var f auditVerifyFlags
	cmd := &cobra.Command{
		Use:   "verify [FILE] [--bucket BUCKET --prefix PREFIX (--public-key PEM | --kms-key KEY)]",
		Short: "Check the audit trail: a file, the bucket, or both, against the KMS-signed digests",
		Long: "Without --bucket, walks the file's hash chain and reports the first edited, deleted, inserted or\n" +
			"reordered record; that chain has no key, so someone who can write the file can recompute it.\n" +
			"With --bucket, checks the signed digests in the bucket (each signature, the chain of digests, the\n" +
			"shipped record batches) and, when FILE is given, every record of the file against them: edited,\n" +
			"reordered, inserted, deleted (the tail included) and missing-digest ranges, with sequence numbers\n" +
			"and times. It needs only read access to the bucket and the public key (or kms:Verify).\n" +
			"Exits 1 when tampering is found; warnings (records not yet anchored, pauses between digests) do not fail.",
		Example: "  lakirotator audit verify audit.jsonl\n" +
			"  aws kms get-public-key --key-id alias/lakirotator-audit --query PublicKey --output text | base64 -d > audit-key.der\n" +
			"  lakirotator audit verify audit.jsonl --bucket acme-lakirotator-audit --prefix production/ --public-key audit-key.der\n" +
			"  lakirotator audit verify --bucket acme-lakirotator-audit --prefix production/ --kms-key alias/lakirotator-audit -o json",
		Args: func(cmd *cobra.Command, args []string) error {
			if f.bucket != "" && len(args) == 0 {
				return nil // the bucket alone
			}
			return needArgs("FILE")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			o := anchor.Options{Now: time.Now().UTC(), Prefix: anchor.NormalizePrefix(f.prefix)}
			if len(args) == 1 {
				file, err := os.Open(args[0])
				if err != nil {
					return usageErr("%v", err)
				}
				defer file.Close()
				o.File, o.FileName = file, args[0]
			}
			if f.bucket != "" {
				if (f.publicKey == "") == (f.kmsKey == "") {
					return usageErr("with --bucket, give exactly one of --public-key FILE or --kms-key KEY to check the digests' signatures")
				}
				s3c, kmsc, err := anchor.NewClients(cmd.Context(), anchor.AWSConfig{Region: f.region, Endpoint: f.endpoint})
				if err != nil {
					return usageErr("%v", err)
				}
				o.Bucket, o.BucketName = anchor.S3Bucket{Client: s3c, Name: f.bucket}, f.bucket
				if f.publicKey != "" {
					pub, err := readPublicKey(f.publicKey)
					if err != nil {
						return usageErr("--public-key %s: %v", f.publicKey, err)
					}
					o.Verifier = anchor.PublicKeyVerifier{Key: pub}
				} else {
					o.Verifier = anchor.KMSVerifier{Client: kmsc, Key: f.kmsKey}
				}
			}
			rep, err := anchor.Verify(cmd.Context(), o)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("audit verify: %w", err))
			}
			if err := printAuditReport(stdio.Out, g.output, rep); err != nil {
				return err
			}
			if !rep.OK {
				return withCode(ExitFailure, errors.New("the audit trail does not verify"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.bucket, "bucket", "", "S3 bucket the records and signed digests are shipped to (audit.anchor.bucket)")
	cmd.Flags().StringVar(&f.prefix, "prefix", "", "key prefix in the bucket (audit.anchor.prefix)")
	cmd.Flags().StringVar(&f.publicKey, "public-key", "", "the signing key's public key, DER or PEM (from kms get-public-key): no KMS access needed")
	cmd.Flags().StringVar(&f.kmsKey, "kms-key", "", "check signatures with kms:Verify on this key id, ARN or alias")
	cmd.Flags().StringVar(&f.region, "region", "", "AWS region of the bucket and key (default: AWS_REGION)")
	cmd.Flags().StringVar(&f.endpoint, "endpoint", "", "replace the AWS endpoints (a test server; http only to loopback)")
	return cmd
}

func readPublicKey(path string) (*ecdsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return anchor.ParsePublicKey(data)
}

func printAuditReport(w io.Writer, format string, rep anchor.Report) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err := io.WriteString(w, rep.String())
	return err
}
