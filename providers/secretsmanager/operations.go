// Package secretsmanager is the Secrets Manager store on aws-sdk-go-v2.
package secretsmanager

// Operations returns every Secrets Manager API operation this store may
// call. The rotator's IAM policy in terraform/ grants exactly these (a test
// holds the two equal), and the call accounting fails tests that call
// anything else.
func Operations() []string {
	return []string{
		"DescribeSecret",
		"GetSecretValue",
		"ListSecrets",
		"PutSecretValue",
		"TagResource",
		"UpdateSecretVersionStage",
	}
}
