package drill

import (
	"os"
	"testing"

	"github.com/meshfed/meshfed/dev/devtest"
)

func TestMain(m *testing.M) { os.Exit(devtest.Main(m)) }
