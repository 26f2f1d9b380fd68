# A real Puppet transaction over packages managed by the castelet_apt provider, with apt-get,
# dpkg-query and apt-mark replaced by a record of what would have been installed
# (tests/test_castelet_apt.py reads the JSON this prints).
#
# usage: ruby castelet_apt_transaction.rb MODULE_LIB SCRATCH_DIR MANIFEST FAILING_NAMES
#   MANIFEST is Puppet code; an apt-get call naming one of FAILING_NAMES (comma-separated) fails.
require 'fileutils'
require 'json'
require 'set'
require 'puppet'

module_lib, scratch, manifest, failing = ARGV
%w[conf var log run code].each { |sub| FileUtils.mkdir_p(File.join(scratch, sub)) }
Puppet.initialize_settings([
  '--confdir', File.join(scratch, 'conf'), '--vardir', File.join(scratch, 'var'),
  '--logdir', File.join(scratch, 'log'), '--rundir', File.join(scratch, 'run'),
  '--codedir', File.join(scratch, 'code'), '--color', 'false'
])
$LOAD_PATH.unshift(module_lib)
require 'puppet/provider/package/castelet_apt'

installed = Set.new
calls = []
failing_names = (failing || '').split(',')
apt = Puppet::Type.type(:package).provider(:apt)
# Nothing is installed when the run starts.
apt.define_singleton_method(:instances) { [] }
apt.send(:define_method, :query) do
  name = @resource[:name]
  if installed.include?(name)
    { ensure: '1.0', name: name, status: 'installed', provider: self.class.name }
  else
    { ensure: :purged, name: name, status: 'missing', provider: self.class.name }
  end
end
apt.send(:define_method, :aptget) do |*args|
  names = args.drop_while { |arg| arg.to_s != 'install' }.drop(1).map { |arg| arg.to_s.sub(/=.*/, '') }
  calls << names
  raise Puppet::ExecutionFailure, "E: Unable to locate package #{(names & failing_names).first}" if (names & failing_names).any?

  installed.merge(names)
  ''
end
apt.send(:define_method, :aptmark) { |*_args| '' }
apt.send(:define_method, :checkforcdrom) { nil }

Puppet[:code] = manifest
node = Puppet::Node.new('castelet-apt-test', facts: Puppet::Node::Facts.new('castelet-apt-test', {}))
catalog = Puppet::Resource::Catalog.indirection.find('castelet-apt-test', use_node: node)
ral = catalog.to_ral
ral.finalize
transaction = ral.apply
statuses = transaction.report.resource_statuses.to_h do |ref, status|
  [ref, { 'changed' => status.changed, 'failed' => status.failed, 'skipped' => status.skipped,
          'events' => status.events.map { |event| event.name.to_s } }]
end
puts JSON.generate('calls' => calls, 'installed' => installed.to_a.sort, 'statuses' => statuses)
