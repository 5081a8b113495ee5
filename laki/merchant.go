package laki

// Merchant is one master merchant in one environment: whose management key a
// call goes with, and what a scan or a watch reads. A master merchant id
// names a different account in each environment, so the pair is the key.
type Merchant struct {
	Environment      Environment
	MasterMerchantID string
}

func (m Merchant) String() string { return string(m.Environment) + "/" + m.MasterMerchantID }
